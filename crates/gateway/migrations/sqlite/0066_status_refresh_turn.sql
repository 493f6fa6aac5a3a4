-- When the agents' statuses were last refreshed from the directory, by any replica: each
-- refresh interval, the first replica to move this forward does the refresh, the others skip it
-- (crates/gateway/src/agent_status.rs).
CREATE TABLE status_refresh (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    last_ms BIGINT NOT NULL
);
INSERT INTO status_refresh (id, last_ms) VALUES (1, 0);
