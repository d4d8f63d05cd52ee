-- Store integrations (WooCommerce): a shop that signs its order webhooks with a secret, the
-- orders it told us about (on their customer's contact), and the deliveries already received
-- (WooCommerce's X-WC-Webhook-Delivery-ID), so a replayed delivery does nothing.
--
-- `connection_id` names the WhatsApp connection the rules send from without a foreign key:
-- deleting a connection must not fail on an integration that names it (a send then fails and
-- is recorded on the order).

CREATE TABLE integrations (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    kind               text NOT NULL CHECK (kind IN ('woocommerce')),
    name               text NOT NULL,
    -- AES-256-GCM under the encryption key ring, bound to (tenant, integration).
    secret_ciphertext  text NOT NULL,
    connection_id      uuid,
    -- The rules as the API writes them (a JSON list).
    rules              jsonb NOT NULL DEFAULT '[]',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT integrations_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE integration_orders (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    integration_id      uuid NOT NULL,
    -- The shop's order id.
    external_id         text NOT NULL,
    number              text NOT NULL,
    status              text NOT NULL,
    -- A decimal amount as the shop wrote it.
    total               text NOT NULL,
    currency            text NOT NULL,
    -- NULL when the order came without a usable phone number.
    contact_id          uuid,
    line_summary        text NOT NULL,
    notification        text CHECK (notification IN ('queued', 'skipped', 'failed')),
    notification_error  text,
    message_id          uuid,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    CONSTRAINT integration_orders_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT integration_orders_external_key UNIQUE (tenant_id, integration_id, external_id)
);
-- A contact's orders, newest first.
CREATE INDEX integration_orders_tenant_contact ON integration_orders (tenant_id, contact_id, id);

CREATE TABLE integration_deliveries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    integration_id  uuid NOT NULL,
    -- X-WC-Webhook-Delivery-ID.
    delivery_id     text NOT NULL,
    topic           text NOT NULL,
    received_at     timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id),
    CONSTRAINT integration_deliveries_key UNIQUE (tenant_id, integration_id, delivery_id)
);

ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integrations
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON integrations TO palisade_app;

ALTER TABLE integration_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_orders
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_orders TO palisade_app;

ALTER TABLE integration_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_deliveries
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON integration_deliveries TO palisade_app;
