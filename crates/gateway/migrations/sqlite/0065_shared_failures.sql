-- Failures counted in the store, so every gateway replica sharing it refuses the same key:
-- wrong passwords per email (crates/gateway/src/throttle.rs, SharedFailures). A key's window
-- starts at its first failure and lasts a minute; over the quota it is refused until then.
CREATE TABLE throttle_failures (
    key              TEXT   PRIMARY KEY,
    window_start_ms  BIGINT NOT NULL,
    failures         BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL
);
