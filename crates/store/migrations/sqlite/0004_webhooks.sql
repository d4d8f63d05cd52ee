-- Outgoing webhooks: endpoints (secrets encrypted at rest), a durable delivery queue, the log of
-- every attempt, and each tenant's allowlist of domains whose endpoints need no approval.

CREATE TABLE webhooks (
    id                         BLOB PRIMARY KEY NOT NULL,
    tenant_id                  BLOB NOT NULL REFERENCES tenants (id),
    url                        TEXT NOT NULL,
    description                TEXT,
    events                     TEXT NOT NULL,
    status                     TEXT NOT NULL CHECK (status IN ('pending_approval', 'active', 'disabled')),
    secret_ciphertext          TEXT NOT NULL,
    previous_secret_ciphertext TEXT,
    previous_secret_expires_at TEXT,
    signature_algorithm        TEXT NOT NULL DEFAULT 'hmac_sha256' CHECK (signature_algorithm IN ('hmac_sha256')),
    created_by                 BLOB NOT NULL,
    approved_by                BLOB,
    approved_at                TEXT,
    disabled_reason            TEXT,
    consecutive_failures       INTEGER NOT NULL DEFAULT 0,
    failing_since              TEXT,
    last_success_at            TEXT,
    last_failure_at            TEXT,
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX webhooks_tenant_id_id_key ON webhooks (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL,
    webhook_id      BLOB NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    last_latency_ms INTEGER,
    last_response   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX webhook_deliveries_tenant_id_id_key ON webhook_deliveries (tenant_id, id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (tenant_id, webhook_id, created_at);

CREATE TABLE webhook_attempts (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL,
    webhook_id    BLOB NOT NULL,
    delivery_id   BLOB NOT NULL,
    attempt       INTEGER NOT NULL,
    attempted_at  TEXT NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    latency_ms    INTEGER NOT NULL,
    response_body TEXT,
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (tenant_id, delivery_id, attempt);
CREATE INDEX webhook_attempts_rate_idx ON webhook_attempts (webhook_id, attempted_at);

CREATE TABLE webhook_settings (
    tenant_id       BLOB PRIMARY KEY NOT NULL REFERENCES tenants (id),
    allowed_domains TEXT NOT NULL,
    updated_by      BLOB,
    updated_at      TEXT NOT NULL
);
