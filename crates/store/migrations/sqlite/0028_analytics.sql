-- Analytics (`/api/v1/analytics/*`) counts and times rows by when they happened, per tenant,
-- over a date range cut into local days or weeks: each statement reads one index range per
-- bucket, never the tenant's whole table.
--
-- When a conversation was resolved: set by the status change into `resolved`, cleared when it
-- is reopened. Conversations resolved before this column existed take their last change.
ALTER TABLE conversations ADD COLUMN resolved_at TEXT;
UPDATE conversations SET resolved_at = updated_at WHERE status = 'resolved';

-- Messages in and out per bucket, and per author (direction, number and author in the index:
-- an index-only scan on PostgreSQL).
CREATE INDEX messages_tenant_created
    ON messages (tenant_id, created_at, direction, connection_id, author_id);
-- A conversation's first inbound and first outbound message (first-response time).
CREATE INDEX messages_tenant_conversation_direction_created
    ON messages (tenant_id, conversation_id, direction, created_at);
-- New and resolved conversations per bucket.
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at, connection_id);
CREATE INDEX conversations_tenant_resolved ON conversations (tenant_id, resolved_at, connection_id);
