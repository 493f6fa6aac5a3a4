-- When the agent signed in: a session refreshed from another keeps its first sign-in's time, so
-- that the absolute lifetime (--session-max-hours) counts from it.
ALTER TABLE sessions ADD COLUMN signed_in_at_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET signed_in_at_ms = created_at_ms;
-- An agent's sessions, newest first: the cap on live sessions per agent reads them so.
CREATE INDEX sessions_by_agent ON sessions (ccai_agent_id, created_at_ms);
