-- Each write of an agent's status policy memory is numbered, so a replica that reads the memory
-- again after an announcement never puts an older write over a newer one it holds
-- (crates/gateway/src/inheritance.rs).
ALTER TABLE status_policy_memory ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
