-- The outbound half of WhatsApp messaging. A message written by an agent (or an API key) is
-- stored `queued`, without a wamid, in the same transaction as its row in
-- whatsapp_outbound_queue (the durable send queue); the sender stores Meta's wamid and `sent`,
-- or `failed` with Meta's error, and removes the queue row.

ALTER TABLE messages ALTER COLUMN wamid DROP NOT NULL;
ALTER TABLE messages DROP CONSTRAINT messages_direction_check;
ALTER TABLE messages ADD CONSTRAINT messages_direction_check
    CHECK (direction IN ('inbound', 'outbound', 'internal'));
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed', 'recorded'));
-- The user who wrote an outbound message or note (NULL for inbound ones and API keys).
ALTER TABLE messages ADD COLUMN author_id uuid;
ALTER TABLE messages ADD CONSTRAINT messages_tenant_id_id_key UNIQUE (tenant_id, id);

-- Internal notes are messages of type `note`, direction `internal`, status `recorded`.

-- Working a conversation: who handles it, and free-form labels (a JSON array of strings).
ALTER TABLE conversations ADD COLUMN assignee_id uuid;
ALTER TABLE conversations ADD COLUMN labels jsonb NOT NULL DEFAULT '[]';
ALTER TABLE conversations ADD CONSTRAINT conversations_assignee_fkey
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id);

CREATE TABLE whatsapp_outbound_queue (
    message_id       uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX whatsapp_outbound_queue_due ON whatsapp_outbound_queue (next_attempt_at);

ALTER TABLE whatsapp_outbound_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_outbound_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON whatsapp_outbound_queue
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_outbound_queue TO palisade_app;
