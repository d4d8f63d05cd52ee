-- The outbound half of WhatsApp messaging. A message written by an agent (or an API key) is
-- stored `queued`, without a wamid, in the same transaction as its row in
-- whatsapp_outbound_queue (the durable send queue); the sender stores Meta's wamid and `sent`,
-- or `failed` with Meta's error, and removes the queue row.
--
-- SQLite cannot change a column or a CHECK in place: messages is rebuilt (nothing references it).

CREATE TABLE messages_new (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    conversation_id    BLOB NOT NULL,
    connection_id      BLOB NOT NULL,
    wamid              TEXT,
    direction          TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    type               TEXT NOT NULL,
    body               TEXT NOT NULL,
    text               TEXT,
    status             TEXT NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed', 'recorded')),
    error              TEXT,
    context_wamid      TEXT,
    sent_at            TEXT,
    created_at         TEXT NOT NULL,
    status_updated_at  TEXT NOT NULL,
    author_id          BLOB,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id)
);
INSERT INTO messages_new (id, tenant_id, conversation_id, connection_id, wamid, direction, type,
        body, text, status, error, context_wamid, sent_at, created_at, status_updated_at)
    SELECT id, tenant_id, conversation_id, connection_id, wamid, direction, type,
        body, text, status, error, context_wamid, sent_at, created_at, status_updated_at
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE UNIQUE INDEX messages_connection_id_wamid_key ON messages (connection_id, wamid);
CREATE UNIQUE INDEX messages_tenant_id_id_key ON messages (tenant_id, id);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id);

-- Internal notes are messages of type `note`, direction `internal`, status `recorded`.

-- Working a conversation: who handles it, and free-form labels (a JSON array of strings).
-- (conversations is referenced by messages, so it cannot be rebuilt here for a composite key;
-- the assignee is checked to be a user of the conversation's tenant before it is written.)
ALTER TABLE conversations ADD COLUMN assignee_id BLOB REFERENCES users (id);
ALTER TABLE conversations ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';

CREATE TABLE whatsapp_outbound_queue (
    message_id       BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX whatsapp_outbound_queue_due ON whatsapp_outbound_queue (next_attempt_at);
