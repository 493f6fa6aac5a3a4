-- The organisation's settings edited by admins in the adapter (status inheritance), as JSON per
-- key, and every change to them: who, what, when.
CREATE TABLE org_settings (
    key           TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by    TEXT    NOT NULL
);
CREATE TABLE settings_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT    NOT NULL
);
