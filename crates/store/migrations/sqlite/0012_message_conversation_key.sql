-- PostgreSQL's 0012 makes a message reference its conversation by (tenant, conversation,
-- connection), so that a message's connection is its conversation's. SQLite cannot change the
-- keys of messages without rebuilding the table, and dropping the old table would cascade to the
-- rows that reference it (send queue, media); a trigger enforces the same rule instead. SQLite's
-- key checks are not planned per row, so the old keys stay.
CREATE TRIGGER messages_connection_is_conversations
BEFORE INSERT ON messages
FOR EACH ROW
WHEN NOT EXISTS (SELECT 1 FROM conversations
                 WHERE tenant_id = NEW.tenant_id AND id = NEW.conversation_id
                   AND connection_id = NEW.connection_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: messages_conversation_fkey');
END;
