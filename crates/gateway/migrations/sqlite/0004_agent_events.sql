-- The agents' event logs survive a restart: each agent's folded state and newest events (the
-- resume buffer), and the stream epoch, which changes only when this memory is lost.
CREATE TABLE agent_state (
    agent_id INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    state    TEXT    NOT NULL
);
CREATE TABLE agent_events (
    agent_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    event    TEXT    NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE gateway_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
