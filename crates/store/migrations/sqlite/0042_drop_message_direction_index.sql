-- As on PostgreSQL (see its 0042): the first-response times are columns of `conversations`
-- since 0031, and this index only cost every message insert an entry. The trigger's rare
-- correction (messages_first_inbound) reads the conversation's messages through
-- `messages_conversation`.
DROP INDEX messages_tenant_conversation_direction_created;
