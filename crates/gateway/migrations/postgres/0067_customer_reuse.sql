-- The key a session's customer was found or created by ("phone:+14155550123", "email:…",
-- "external_id:…"), when Kustomer last said so (the found time is the Kustomer answer's, also
-- for a session that reused it), and whether this session reused it from an earlier session
-- instead of asking Kustomer: a caller who calls again within minutes costs no look-up.
ALTER TABLE crm_sessions ADD COLUMN customer_key TEXT;
ALTER TABLE crm_sessions ADD COLUMN customer_found_ms BIGINT;
ALTER TABLE crm_sessions ADD COLUMN customer_reused BIGINT NOT NULL DEFAULT 0;
CREATE INDEX crm_sessions_by_customer_key ON crm_sessions (customer_key, customer_found_ms);
-- The agent (email) a customer was assigned to in the request that created it: the session's
-- customer assignment then needs no request of its own.
ALTER TABLE crm_sessions ADD COLUMN customer_assignee TEXT;
