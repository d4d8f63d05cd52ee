-- WhatsApp message templates of each connected number's WhatsApp Business Account, as last
-- read from Meta (list sync or Meta's template webhooks) or as submitted. One row per
-- (connection, name, language), Meta's unit of approval; `meta_id` is Meta's id of it.
-- `status` and `category` are Meta's words, kept as Meta sent them (Meta adds statuses);
-- `header_params` / `body_params` are the parameter counts a send must match.

CREATE TABLE message_templates (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    connection_id     uuid NOT NULL,
    waba_id           text NOT NULL,
    meta_id           text NOT NULL,
    name              text NOT NULL,
    language          text NOT NULL,
    category          text NOT NULL,
    status            text NOT NULL,
    quality_score     text,
    rejection_reason  text,
    components        jsonb NOT NULL DEFAULT '[]',
    header_params     bigint NOT NULL CHECK (header_params >= 0),
    body_params       bigint NOT NULL CHECK (body_params >= 0),
    synced_at         timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES whatsapp_connections (tenant_id, id),
    CONSTRAINT message_templates_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT message_templates_tenant_connection_name_language_key
        UNIQUE (tenant_id, connection_id, name, language),
    CONSTRAINT message_templates_tenant_connection_meta_id_key
        UNIQUE (tenant_id, connection_id, meta_id)
);

ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_templates
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON message_templates TO palisade_app;
