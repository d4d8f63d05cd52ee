-- WhatsApp Business numbers connected through Meta's Cloud API. The access token and app
-- secret are stored encrypted (AES-256-GCM, key ring, the row's identity as associated data);
-- the verify token only as a SHA-256 hash.

CREATE TABLE whatsapp_connections (
    id                       BLOB PRIMARY KEY NOT NULL,
    tenant_id                BLOB NOT NULL REFERENCES tenants (id),
    display_name             TEXT NOT NULL,
    phone_number_id          TEXT NOT NULL,
    waba_id                  TEXT NOT NULL,
    display_phone_number     TEXT,
    verified_name            TEXT,
    access_token_ciphertext  TEXT NOT NULL,
    app_secret_ciphertext    TEXT NOT NULL,
    verify_token_hash        BLOB NOT NULL,
    status                   TEXT NOT NULL CHECK (status IN ('active', 'disconnected')),
    created_by               BLOB NOT NULL,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    disconnected_at          TEXT,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX whatsapp_connections_phone_number_id_key ON whatsapp_connections (phone_number_id);
CREATE UNIQUE INDEX whatsapp_connections_tenant_id_id_key ON whatsapp_connections (tenant_id, id);
