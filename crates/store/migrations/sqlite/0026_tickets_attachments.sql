-- Tickets, their comments and attached files, and each user's upload volume per day.
-- Every table carries tenant_id and every key between them includes it, so a row can only
-- point at rows of its own tenant.
--
-- A comment sent to the customer keeps the id of the WhatsApp message it was sent as, without
-- a key: the ticket, not the message, owns the comment.
--
-- Attachments are stored by SHA-256 (the hex digest names the file in the tenant's storage
-- directory); the name a user gave is kept, sanitised, for display only.
--
-- upload_usage holds the bytes a user uploaded on a UTC day. An upload adds its size with one
-- conditional upsert in the attachment's transaction, so two concurrent uploads at the edge of
-- the quota cannot both pass.

CREATE TABLE tickets (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    subject          TEXT NOT NULL,
    description      TEXT NOT NULL,
    priority         TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status           TEXT NOT NULL CHECK (status IN ('open', 'pending', 'solved', 'closed')),
    assignee_id      BLOB,
    contact_id       BLOB,
    conversation_id  BLOB,
    -- The conversation's connection, written with conversation_id (PostgreSQL keys a
    -- conversation by (tenant, id, connection): see migration 0012).
    connection_id    BLOB,
    -- The user who opened it (an API key acts for its creator).
    created_by       BLOB,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);
CREATE UNIQUE INDEX tickets_tenant_id_id_key ON tickets (tenant_id, id);
-- The list's filters, each yielding its rows newest first (by id).
CREATE INDEX tickets_tenant_status ON tickets (tenant_id, status, id);
CREATE INDEX tickets_tenant_priority ON tickets (tenant_id, priority, id);
CREATE INDEX tickets_tenant_assignee ON tickets (tenant_id, assignee_id, id);
CREATE INDEX tickets_tenant_contact ON tickets (tenant_id, contact_id, id);
CREATE INDEX tickets_tenant_conversation ON tickets (tenant_id, conversation_id);

CREATE TABLE ticket_comments (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    ticket_id    BLOB NOT NULL,
    body         TEXT NOT NULL,
    visibility   TEXT NOT NULL CHECK (visibility IN ('public', 'internal')),
    author_id    BLOB,
    -- The WhatsApp message a public comment was sent as (no key, see above).
    message_id   BLOB,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, author_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX ticket_comments_tenant_ticket ON ticket_comments (tenant_id, ticket_id, id);

CREATE TABLE attachments (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    ticket_id     BLOB NOT NULL,
    -- Sanitised, for display only; never a storage path.
    filename      TEXT NOT NULL,
    -- Decided from the content.
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL CHECK (size_bytes >= 0),
    -- Hex SHA-256: also the stored file's name.
    sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
    uploaded_by   BLOB,
    created_at    TEXT NOT NULL,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, uploaded_by) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX attachments_tenant_id_id_key ON attachments (tenant_id, id);
CREATE INDEX attachments_tenant_ticket ON attachments (tenant_id, ticket_id, id);
CREATE INDEX attachments_tenant_sha256 ON attachments (tenant_id, sha256);

CREATE TABLE upload_usage (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL,
    -- The UTC day, YYYY-MM-DD.
    day         TEXT NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (tenant_id, user_id, day),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

