-- The inbound half of WhatsApp messaging. Meta's webhook POSTs are stored verbatim in
-- whatsapp_inbound_events (the durable record, written before the 200), then processed into
-- contacts, conversations and messages.

CREATE TABLE whatsapp_inbound_events (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    connection_id  uuid NOT NULL,
    body           bytea NOT NULL,
    received_at    timestamptz NOT NULL,
    processed_at   timestamptz,
    attempts       bigint NOT NULL DEFAULT 0,
    error          text,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX whatsapp_inbound_events_pending ON whatsapp_inbound_events (id) WHERE processed_at IS NULL;

CREATE TABLE contacts (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    phone            text NOT NULL,
    wa_id            text,
    name             text,
    wa_profile_name  text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT contacts_tenant_id_phone_key UNIQUE (tenant_id, phone),
    CONSTRAINT contacts_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    contact_id       uuid NOT NULL,
    connection_id    uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('open', 'pending', 'resolved')),
    last_message_at  timestamptz NOT NULL,
    last_inbound_at  timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id),
    CONSTRAINT conversations_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- At most one unresolved conversation per contact and number.
CREATE UNIQUE INDEX conversations_active_key ON conversations (tenant_id, contact_id, connection_id)
    WHERE status <> 'resolved';
CREATE INDEX conversations_tenant_status ON conversations (tenant_id, status, id);

CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    conversation_id    uuid NOT NULL,
    connection_id      uuid NOT NULL,
    wamid              text NOT NULL,
    direction          text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    type               text NOT NULL,
    body               jsonb NOT NULL,
    text               text,
    status             text NOT NULL CHECK (status IN ('received', 'sent', 'delivered', 'read', 'failed')),
    error              jsonb,
    context_wamid      text,
    sent_at            timestamptz,
    created_at         timestamptz NOT NULL,
    status_updated_at  timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id),
    CONSTRAINT messages_connection_id_wamid_key UNIQUE (connection_id, wamid)
);
CREATE INDEX messages_conversation ON messages (tenant_id, conversation_id, id);

ALTER TABLE whatsapp_inbound_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_inbound_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON whatsapp_inbound_events
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_inbound_events TO palisade_app;

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON contacts TO palisade_app;

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON conversations TO palisade_app;

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON messages TO palisade_app;
