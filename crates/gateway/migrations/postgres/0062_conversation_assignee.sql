-- The agent (email) a conversation was assigned to in the request that created it: the session's
-- assignment then needs no request of its own.
ALTER TABLE crm_sessions ADD COLUMN conversation_assignee TEXT;
