-- CCAI session webhooks received, by the platform's event id: a replay is recognised and not
-- processed twice. The payload stays for the CRM sync (voicemail, CSAT, SmartAction results).
-- Rows older than 7 days are pruned at startup.
CREATE TABLE webhook_events (
    event_id       TEXT    PRIMARY KEY,
    event_type     TEXT    NOT NULL,
    agent_id       INTEGER,
    payload        TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX webhook_events_by_age ON webhook_events (received_at_ms);
