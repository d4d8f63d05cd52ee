-- Files sent as WhatsApp media from a conversation.
--
-- An attachment now belongs to a ticket or to a conversation (exactly one of the two): the
-- same hardened upload, quota and audit serve both.
--
-- outbound_media: the file a queued media message sends. The sender uploads it to Meta's media
-- endpoint when it sends the message and records Meta's media id here, so a retry does not
-- upload it again. The file is named by what was checked when the message was queued (type,
-- size, SHA-256), not by a key to the attachment: deleting a ticket does not have to wait for
-- its files' messages.

ALTER TABLE attachments ALTER COLUMN ticket_id DROP NOT NULL;
ALTER TABLE attachments
    ADD COLUMN conversation_id uuid,
    -- The conversation's connection, written with conversation_id (see the key below).
    ADD COLUMN connection_id uuid,
    ADD CONSTRAINT attachments_one_owner CHECK ((ticket_id IS NULL) <> (conversation_id IS NULL)),
    -- Conversations are keyed by (tenant, id, connection) on PostgreSQL (migration 0012).
    ADD CONSTRAINT attachments_conversation_fkey FOREIGN KEY (tenant_id, conversation_id, connection_id)
        REFERENCES conversations (tenant_id, id, connection_id);
CREATE INDEX attachments_tenant_conversation ON attachments (tenant_id, conversation_id, id);

CREATE TABLE outbound_media (
    message_id     uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    attachment_id  uuid NOT NULL,
    filename       text NOT NULL,
    content_type   text NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    sha256         text NOT NULL CHECK (length(sha256) = 64),
    -- Meta's media id, once the sender uploaded the file.
    media_id       text,
    uploaded_at    timestamptz,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX outbound_media_tenant_sha256 ON outbound_media (tenant_id, sha256);

ALTER TABLE outbound_media ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbound_media FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbound_media
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON outbound_media TO palisade_app;
