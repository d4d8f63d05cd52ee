-- The inbound half of WhatsApp messaging. Meta's webhook POSTs are stored verbatim in
-- whatsapp_inbound_events (the durable record, written before the 200), then processed into
-- contacts, conversations and messages.

CREATE TABLE whatsapp_inbound_events (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    connection_id  BLOB NOT NULL,
    body           BLOB NOT NULL,
    received_at    TEXT NOT NULL,
    processed_at   TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX whatsapp_inbound_events_pending ON whatsapp_inbound_events (id) WHERE processed_at IS NULL;

CREATE TABLE contacts (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    phone            TEXT NOT NULL,
    wa_id            TEXT,
    name             TEXT,
    wa_profile_name  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_tenant_id_phone_key ON contacts (tenant_id, phone);
CREATE UNIQUE INDEX contacts_tenant_id_id_key ON contacts (tenant_id, id);

CREATE TABLE conversations (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    contact_id       BLOB NOT NULL,
    connection_id    BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved')),
    last_message_at  TEXT NOT NULL,
    last_inbound_at  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id)
);
CREATE UNIQUE INDEX conversations_tenant_id_id_key ON conversations (tenant_id, id);
-- At most one unresolved conversation per contact and number.
CREATE UNIQUE INDEX conversations_active_key ON conversations (tenant_id, contact_id, connection_id)
    WHERE status <> 'resolved';
CREATE INDEX conversations_tenant_status ON conversations (tenant_id, status, id);

CREATE TABLE messages (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    conversation_id    BLOB NOT NULL,
    connection_id      BLOB NOT NULL,
    wamid              TEXT NOT NULL,
    direction          TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    type               TEXT NOT NULL,
    body               TEXT NOT NULL,
    text               TEXT,
    status             TEXT NOT NULL CHECK (status IN ('received', 'sent', 'delivered', 'read', 'failed')),
    error              TEXT,
    context_wamid      TEXT,
    sent_at            TEXT,
    created_at         TEXT NOT NULL,
    status_updated_at  TEXT NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id)
);
CREATE UNIQUE INDEX messages_connection_id_wamid_key ON messages (connection_id, wamid);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id);
