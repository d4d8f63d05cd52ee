-- WhatsApp Business numbers connected through Meta's Cloud API. The access token and app
-- secret are stored encrypted (AES-256-GCM, key ring, the row's identity as associated data);
-- the verify token only as a SHA-256 hash.

CREATE TABLE whatsapp_connections (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants (id),
    display_name             text NOT NULL,
    phone_number_id          text NOT NULL,
    waba_id                  text NOT NULL,
    display_phone_number     text,
    verified_name            text,
    access_token_ciphertext  text NOT NULL,
    app_secret_ciphertext    text NOT NULL,
    verify_token_hash        bytea NOT NULL,
    status                   text NOT NULL CHECK (status IN ('active', 'disconnected')),
    created_by               uuid NOT NULL,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    disconnected_at          timestamptz,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    CONSTRAINT whatsapp_connections_phone_number_id_key UNIQUE (phone_number_id),
    CONSTRAINT whatsapp_connections_tenant_id_id_key UNIQUE (tenant_id, id)
);
ALTER TABLE whatsapp_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE whatsapp_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON whatsapp_connections
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_connections TO palisade_app;
