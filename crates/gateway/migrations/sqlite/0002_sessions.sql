-- Agent sessions. Only a hash of each token is kept: a copy of the database signs nobody in.
CREATE TABLE sessions (
    token_hash       TEXT    PRIMARY KEY,
    agent_email      TEXT    NOT NULL,
    ccai_agent_id    INTEGER NOT NULL,
    kustomer_user_id TEXT    NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    expires_at_ms    INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
