-- CRM sync: every session webhook is queued for the rules in the same transaction that records
-- it (the trigger), so a crash between the two cannot lose one.
CREATE TABLE crm_inbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT    NOT NULL UNIQUE,
    payload  TEXT    NOT NULL
);
CREATE TRIGGER crm_inbox_on_webhook AFTER INSERT ON webhook_events
BEGIN
    INSERT OR IGNORE INTO crm_inbox (event_id, payload) VALUES (NEW.event_id, NEW.payload);
END;

-- The durable outbox: each Kustomer operation the rules planned, persisted before it is tried,
-- unique per session and rule (`key`), run in `seq` order within its session. `state`:
-- pending, done, or dead (a dead letter, with its reason in `last_error`).
CREATE TABLE crm_outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT    NOT NULL UNIQUE,
    session_id     INTEGER NOT NULL,
    rule           TEXT    NOT NULL,
    op             TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'pending',
    attempts       INTEGER NOT NULL DEFAULT 0,
    due_ms         INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_ms     INTEGER NOT NULL,
    done_ms        INTEGER
);
CREATE INDEX crm_outbox_by_session ON crm_outbox (state, session_id, seq);
CREATE INDEX crm_outbox_by_due ON crm_outbox (state, due_ms);

-- What the operations of a session found or created in Kustomer.
CREATE TABLE crm_sessions (
    session_id       INTEGER PRIMARY KEY,
    started_ms       INTEGER NOT NULL,
    customer_id      TEXT,
    customer_created INTEGER NOT NULL DEFAULT 0,
    conversation_id  TEXT,
    message_id       TEXT
);

-- Admin settings of the CRM sync (JSON per key): abandoned calls, custom data mapping, when the
-- custom fields were provisioned.
CREATE TABLE crm_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The Kustomer org's request budget, shared by every gateway replica on this store.
CREATE TABLE kustomer_budget (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    window_start_ms  INTEGER NOT NULL,
    used             INTEGER NOT NULL,
    blocked_until_ms INTEGER NOT NULL
);
INSERT INTO kustomer_budget (id, window_start_ms, used, blocked_until_ms) VALUES (1, 0, 0, 0);
