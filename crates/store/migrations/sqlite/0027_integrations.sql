-- Store integrations (WooCommerce): a shop that signs its order webhooks with a secret, the
-- orders it told us about (on their customer's contact), and the deliveries already received
-- (WooCommerce's X-WC-Webhook-Delivery-ID), so a replayed delivery does nothing.
--
-- `connection_id` names the WhatsApp connection the rules send from without a foreign key:
-- deleting a connection must not fail on an integration that names it (a send then fails and
-- is recorded on the order).

CREATE TABLE integrations (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    kind               TEXT NOT NULL CHECK (kind IN ('woocommerce')),
    name               TEXT NOT NULL,
    -- AES-256-GCM under the encryption key ring, bound to (tenant, integration).
    secret_ciphertext  TEXT NOT NULL,
    connection_id      BLOB,
    -- The rules as the API writes them (a JSON list).
    rules              TEXT NOT NULL DEFAULT '[]',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX integrations_tenant_id_id_key ON integrations (tenant_id, id);

CREATE TABLE integration_orders (
    id                  BLOB PRIMARY KEY NOT NULL,
    tenant_id           BLOB NOT NULL REFERENCES tenants (id),
    integration_id      BLOB NOT NULL,
    -- The shop's order id.
    external_id         TEXT NOT NULL,
    number              TEXT NOT NULL,
    status              TEXT NOT NULL,
    -- A decimal amount as the shop wrote it.
    total               TEXT NOT NULL,
    currency            TEXT NOT NULL,
    -- NULL when the order came without a usable phone number.
    contact_id          BLOB,
    line_summary        TEXT NOT NULL,
    notification        TEXT CHECK (notification IN ('queued', 'skipped', 'failed')),
    notification_error  TEXT,
    message_id          BLOB,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE UNIQUE INDEX integration_orders_tenant_id_id_key ON integration_orders (tenant_id, id);
CREATE UNIQUE INDEX integration_orders_external_key
    ON integration_orders (tenant_id, integration_id, external_id);
-- A contact's orders, newest first.
CREATE INDEX integration_orders_tenant_contact ON integration_orders (tenant_id, contact_id, id);

CREATE TABLE integration_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    integration_id  BLOB NOT NULL,
    -- X-WC-Webhook-Delivery-ID.
    delivery_id     TEXT NOT NULL,
    topic           TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE UNIQUE INDEX integration_deliveries_key
    ON integration_deliveries (tenant_id, integration_id, delivery_id);
