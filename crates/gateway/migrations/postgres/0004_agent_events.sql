-- The agents' event logs survive a restart: each agent's folded state and newest events (the
-- resume buffer), and the stream epoch, which changes only when this memory is lost.
CREATE TABLE agent_state (
    agent_id BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    state    TEXT    NOT NULL
);
CREATE TABLE agent_events (
    agent_id BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    event    TEXT    NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE gateway_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
