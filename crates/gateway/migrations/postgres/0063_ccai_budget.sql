-- The CCAI tenant's request budget, shared by the gateway replicas on a PostgreSQL store (a
-- single process keeps it in memory alone): windows of 100 ms aligned on the clock, each
-- taking a tenth of the tenant's requests per second (crates/gateway/src/ccai.rs, RateBudget).
CREATE TABLE ccai_budget (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    window_start_ms BIGINT NOT NULL,
    used            BIGINT NOT NULL
);
INSERT INTO ccai_budget (id, window_start_ms, used) VALUES (1, 0, 0);
