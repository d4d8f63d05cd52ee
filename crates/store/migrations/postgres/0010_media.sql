-- Inbound media (image, audio, video, document, sticker): one row per media message, holding
-- both the durable download job and the state of the stored file. Inserted by the processing
-- of Meta's webhook in the transaction that stores the message; the media worker fetches the
-- file through the Graph media API into the tenant's storage and records the outcome here.

CREATE TABLE message_media (
    message_id       uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    kind             text NOT NULL CHECK (kind IN ('image', 'audio', 'video', 'document', 'sticker')),
    -- Meta's media id and what the webhook said about the file (sha256 as Meta wrote it).
    media_id         text NOT NULL,
    mime_type        text,
    sha256           text,
    filename         text,
    status           text NOT NULL CHECK (status IN ('pending', 'stored', 'failed')),
    -- Set once stored: the size, the SHA-256 (lowercase hex) of the stored bytes, and the key
    -- the server generated for the file in the tenant's storage.
    size_bytes       bigint,
    content_sha256   text,
    storage_key      text,
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    -- Why the last attempt failed (pending) or why the download was given up (failed).
    error_code       text,
    error            text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_media_due ON message_media (next_attempt_at) WHERE status = 'pending';

ALTER TABLE message_media ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_media FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_media
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON message_media TO palisade_app;
