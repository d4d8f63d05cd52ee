-- Inbound media (image, audio, video, document, sticker): one row per media message, holding
-- both the durable download job and the state of the stored file. Inserted by the processing
-- of Meta's webhook in the transaction that stores the message; the media worker fetches the
-- file through the Graph media API into the tenant's storage and records the outcome here.

CREATE TABLE message_media (
    message_id       BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    kind             TEXT NOT NULL CHECK (kind IN ('image', 'audio', 'video', 'document', 'sticker')),
    -- Meta's media id and what the webhook said about the file (sha256 as Meta wrote it).
    media_id         TEXT NOT NULL,
    mime_type        TEXT,
    sha256           TEXT,
    filename         TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'stored', 'failed')),
    -- Set once stored: the size, the SHA-256 (lowercase hex) of the stored bytes, and the key
    -- the server generated for the file in the tenant's storage.
    size_bytes       INTEGER,
    content_sha256   TEXT,
    storage_key      TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    -- Why the last attempt failed (pending) or why the download was given up (failed).
    error_code       TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_media_due ON message_media (next_attempt_at) WHERE status = 'pending';
