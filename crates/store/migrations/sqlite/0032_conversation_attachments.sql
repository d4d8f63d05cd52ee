-- Files sent as WhatsApp media from a conversation.
--
-- An attachment now belongs to a ticket or to a conversation (exactly one of the two): the
-- same hardened upload, quota and audit serve both. SQLite cannot relax a NOT NULL column in
-- place, so the table is rebuilt (nothing refers to it).
--
-- outbound_media: the file a queued media message sends. The sender uploads it to Meta's media
-- endpoint when it sends the message and records Meta's media id here, so a retry does not
-- upload it again. The file is named by what was checked when the message was queued (type,
-- size, SHA-256), not by a key to the attachment: deleting a ticket does not have to wait for
-- its files' messages.

CREATE TABLE attachments_new (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    ticket_id        BLOB,
    conversation_id  BLOB,
    -- The conversation's connection, written with conversation_id (PostgreSQL keys a
    -- conversation by (tenant, id, connection): see migration 0012).
    connection_id    BLOB,
    filename         TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256           TEXT NOT NULL CHECK (length(sha256) = 64),
    uploaded_by      BLOB,
    created_at       TEXT NOT NULL,
    CHECK ((ticket_id IS NULL) <> (conversation_id IS NULL)),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, uploaded_by) REFERENCES users (tenant_id, id)
);
INSERT INTO attachments_new (id, tenant_id, ticket_id, conversation_id, connection_id, filename,
                             content_type, size_bytes, sha256, uploaded_by, created_at)
SELECT id, tenant_id, ticket_id, NULL, NULL, filename, content_type, size_bytes, sha256,
       uploaded_by, created_at
FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_new RENAME TO attachments;
CREATE UNIQUE INDEX attachments_tenant_id_id_key ON attachments (tenant_id, id);
CREATE INDEX attachments_tenant_ticket ON attachments (tenant_id, ticket_id, id);
CREATE INDEX attachments_tenant_conversation ON attachments (tenant_id, conversation_id, id);
CREATE INDEX attachments_tenant_sha256 ON attachments (tenant_id, sha256);

CREATE TABLE outbound_media (
    message_id     BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    attachment_id  BLOB NOT NULL,
    filename       TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256         TEXT NOT NULL CHECK (length(sha256) = 64),
    -- Meta's media id, once the sender uploaded the file.
    media_id       TEXT,
    uploaded_at    TEXT,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX outbound_media_tenant_sha256 ON outbound_media (tenant_id, sha256);
