-- The outbox heals by itself (crates/gateway/src/crm/executor.rs, crm/breaker.rs):
--
-- `lane`: operations of one lane run in `seq` order (a session's CRM operations, or an agent's
-- status write-backs: `session-{id}`, `agent-{id}`). `first_failed_ms`: when the operation
-- began failing, for the retry time budget (`--crm-retry-hours`); cleared when it succeeds or
-- the breaker closes. State `held`: waits behind a dead letter of its lane that it needs
-- (its conversation, customer or message); released with it by an admin's retry.
ALTER TABLE crm_outbox ADD COLUMN lane TEXT NOT NULL DEFAULT '';
ALTER TABLE crm_outbox ADD COLUMN first_failed_ms INTEGER;
UPDATE crm_outbox SET lane = 'session-' || session_id;
CREATE INDEX crm_outbox_by_lane ON crm_outbox (state, lane, seq);

-- The circuit breaker of all Kustomer work, shared by every replica on this store: `open` = 1
-- pauses the outbox (nothing is tried, nothing dead-letters) until an operation let through as
-- a probe (at `next_probe_ms`; `probes` so far, the interval doubling from a second) gets an
-- answer from Kustomer.
CREATE TABLE kustomer_breaker (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    open          INTEGER NOT NULL,
    reason        TEXT,
    opened_ms     INTEGER,
    next_probe_ms INTEGER NOT NULL,
    probes        INTEGER NOT NULL,
    failures      INTEGER NOT NULL
);
INSERT INTO kustomer_breaker (id, open, next_probe_ms, probes, failures) VALUES (1, 0, 0, 0, 0);

-- The status inheritance policy's memory of each agent (who set the latest change and the
-- pending next status, and when: adapter_core::status_policy::SyncMemory as JSON), so a
-- restart keeps it.
CREATE TABLE status_policy_memory (
    agent_id      INTEGER PRIMARY KEY,
    memory        TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
