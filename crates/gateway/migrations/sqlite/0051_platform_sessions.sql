-- The platform's sessions by the platform's own id (a call and a chat may share a number): the
-- gateway's id for each (used on the agents' streams and in the CRM outbox), the agent, whether
-- the gateway placed it (click-to-call), and the furthest lifecycle stage seen, so an event that
-- arrives late never takes a call back to an earlier state.
CREATE TABLE platform_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    platform_id TEXT    NOT NULL,
    agent_id    INTEGER,
    outbound    INTEGER NOT NULL DEFAULT 0,
    stage       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (channel, platform_id)
);
-- An inbox event whose session details cannot be read yet (the Manager API down, a 404, an
-- answer that does not decode) waits with its reason and is retried with backoff: nothing is
-- dropped, and admins see why.
ALTER TABLE crm_inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crm_inbox ADD COLUMN due_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crm_inbox ADD COLUMN last_error TEXT;
