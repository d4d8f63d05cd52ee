-- Outgoing webhooks: endpoints (secrets encrypted at rest), a durable delivery queue, the log of
-- every attempt, and each tenant's allowlist of domains whose endpoints need no approval.

CREATE TABLE webhooks (
    id                         uuid PRIMARY KEY,
    tenant_id                  uuid NOT NULL REFERENCES tenants (id),
    url                        text NOT NULL,
    description                text,
    events                     jsonb NOT NULL,
    status                     text NOT NULL CHECK (status IN ('pending_approval', 'active', 'disabled')),
    secret_ciphertext          text NOT NULL,
    previous_secret_ciphertext text,
    previous_secret_expires_at timestamptz,
    signature_algorithm        text NOT NULL DEFAULT 'hmac_sha256' CHECK (signature_algorithm IN ('hmac_sha256')),
    created_by                 uuid NOT NULL,
    approved_by                uuid,
    approved_at                timestamptz,
    disabled_reason            text,
    consecutive_failures       bigint NOT NULL DEFAULT 0,
    failing_since              timestamptz,
    last_success_at            timestamptz,
    last_failure_at            timestamptz,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    CONSTRAINT webhooks_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    webhook_id      uuid NOT NULL,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_status     bigint,
    last_error      text,
    last_latency_ms bigint,
    last_response   text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (tenant_id, webhook_id, created_at);

CREATE TABLE webhook_attempts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    webhook_id    uuid NOT NULL,
    delivery_id   uuid NOT NULL,
    attempt       bigint NOT NULL,
    attempted_at  timestamptz NOT NULL,
    status_code   bigint,
    error         text,
    latency_ms    bigint NOT NULL,
    response_body text,
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (tenant_id, delivery_id, attempt);
CREATE INDEX webhook_attempts_rate_idx ON webhook_attempts (webhook_id, attempted_at);

CREATE TABLE webhook_settings (
    tenant_id       uuid PRIMARY KEY REFERENCES tenants (id),
    allowed_domains jsonb NOT NULL,
    updated_by      uuid,
    updated_at      timestamptz NOT NULL
);

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhooks
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks TO palisade_app;

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO palisade_app;

ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_attempts
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, DELETE ON webhook_attempts TO palisade_app;

ALTER TABLE webhook_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_settings
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_settings TO palisade_app;
