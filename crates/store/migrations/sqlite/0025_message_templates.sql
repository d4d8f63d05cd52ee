-- WhatsApp message templates of each connected number's WhatsApp Business Account, as last
-- read from Meta (list sync or Meta's template webhooks) or as submitted. One row per
-- (connection, name, language), Meta's unit of approval; `meta_id` is Meta's id of it.
-- `status` and `category` are Meta's words, kept as Meta sent them (Meta adds statuses);
-- `header_params` / `body_params` are the parameter counts a send must match.

CREATE TABLE message_templates (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    connection_id     BLOB NOT NULL,
    waba_id           TEXT NOT NULL,
    meta_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    language          TEXT NOT NULL,
    category          TEXT NOT NULL,
    status            TEXT NOT NULL,
    quality_score     TEXT,
    rejection_reason  TEXT,
    components        TEXT NOT NULL DEFAULT '[]',
    header_params     INTEGER NOT NULL CHECK (header_params >= 0),
    body_params       INTEGER NOT NULL CHECK (body_params >= 0),
    synced_at         TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id)
);
CREATE UNIQUE INDEX message_templates_tenant_id_id_key ON message_templates (tenant_id, id);
CREATE UNIQUE INDEX message_templates_tenant_connection_name_language_key
    ON message_templates (tenant_id, connection_id, name, language);
CREATE UNIQUE INDEX message_templates_tenant_connection_meta_id_key
    ON message_templates (tenant_id, connection_id, meta_id);
