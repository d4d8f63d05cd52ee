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
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    subject          text NOT NULL,
    description      text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status           text NOT NULL CHECK (status IN ('open', 'pending', 'solved', 'closed')),
    assignee_id      uuid,
    contact_id       uuid,
    conversation_id  uuid,
    -- The conversation's connection, written with conversation_id (see the key below).
    connection_id    uuid,
    -- The user who opened it (an API key acts for its creator).
    created_by       uuid,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    -- Conversations are keyed by (tenant, id, connection) on PostgreSQL (migration 0012).
    FOREIGN KEY (tenant_id, conversation_id, connection_id)
        REFERENCES conversations (tenant_id, id, connection_id),
    CONSTRAINT tickets_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- The list's filters, each yielding its rows newest first (by id).
CREATE INDEX tickets_tenant_status ON tickets (tenant_id, status, id);
CREATE INDEX tickets_tenant_priority ON tickets (tenant_id, priority, id);
CREATE INDEX tickets_tenant_assignee ON tickets (tenant_id, assignee_id, id);
CREATE INDEX tickets_tenant_contact ON tickets (tenant_id, contact_id, id);
CREATE INDEX tickets_tenant_conversation ON tickets (tenant_id, conversation_id);

CREATE TABLE ticket_comments (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    ticket_id    uuid NOT NULL,
    body         text NOT NULL,
    visibility   text NOT NULL CHECK (visibility IN ('public', 'internal')),
    author_id    uuid,
    -- The WhatsApp message a public comment was sent as (no key, see above).
    message_id   uuid,
    created_at   timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, author_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX ticket_comments_tenant_ticket ON ticket_comments (tenant_id, ticket_id, id);

CREATE TABLE attachments (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    ticket_id     uuid NOT NULL,
    -- Sanitised, for display only; never a storage path.
    filename      text NOT NULL,
    -- Decided from the content.
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    -- Hex SHA-256: also the stored file's name.
    sha256        text NOT NULL CHECK (length(sha256) = 64),
    uploaded_by   uuid,
    created_at    timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, uploaded_by) REFERENCES users (tenant_id, id),
    CONSTRAINT attachments_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX attachments_tenant_ticket ON attachments (tenant_id, ticket_id, id);
CREATE INDEX attachments_tenant_sha256 ON attachments (tenant_id, sha256);

CREATE TABLE upload_usage (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL,
    -- The UTC day, YYYY-MM-DD (text, as on SQLite).
    day         text NOT NULL,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (tenant_id, user_id, day),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tickets
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON tickets TO palisade_app;

ALTER TABLE ticket_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ticket_comments
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON ticket_comments TO palisade_app;

ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attachments
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON attachments TO palisade_app;

ALTER TABLE upload_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE upload_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON upload_usage
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON upload_usage TO palisade_app;
