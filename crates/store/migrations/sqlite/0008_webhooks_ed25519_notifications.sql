-- Ed25519 (Standard Webhooks `v1a`) signing for outgoing webhooks, and in-app notifications.
--
-- An ed25519 endpoint keeps its `whsk_…` private key in secret_ciphertext (encrypted like a
-- `whsec_…` secret) and its `whpk_…` public key in clear in public_key, so GET can show it.
--
-- SQLite cannot change a CHECK in place, and webhooks is referenced by webhook_deliveries
-- (ON DELETE CASCADE), which webhook_attempts references: the three are rebuilt together, the
-- new tables first, the old ones dropped children first (so no cascade fires), then renamed
-- (a rename rewrites the references to the renamed table).

CREATE TABLE webhooks_new (
    id                         BLOB PRIMARY KEY NOT NULL,
    tenant_id                  BLOB NOT NULL REFERENCES tenants (id),
    url                        TEXT NOT NULL,
    description                TEXT,
    events                     TEXT NOT NULL,
    status                     TEXT NOT NULL CHECK (status IN ('pending_approval', 'active', 'disabled')),
    secret_ciphertext          TEXT NOT NULL,
    previous_secret_ciphertext TEXT,
    previous_secret_expires_at TEXT,
    signature_algorithm        TEXT NOT NULL DEFAULT 'hmac_sha256' CHECK (signature_algorithm IN ('hmac_sha256', 'ed25519')),
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
    public_key                 TEXT,
    CHECK ((public_key IS NOT NULL) = (signature_algorithm = 'ed25519')),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE TABLE webhook_deliveries_new (
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
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks_new (tenant_id, id) ON DELETE CASCADE
);
CREATE TABLE webhook_attempts_new (
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
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries_new (tenant_id, id) ON DELETE CASCADE
);
-- The parents' unique keys must exist before child rows reference them.
CREATE UNIQUE INDEX webhooks_new_tenant_id_id_key ON webhooks_new (tenant_id, id);
CREATE UNIQUE INDEX webhook_deliveries_new_tenant_id_id_key ON webhook_deliveries_new (tenant_id, id);

INSERT INTO webhooks_new (id, tenant_id, url, description, events, status, secret_ciphertext,
        previous_secret_ciphertext, previous_secret_expires_at, signature_algorithm, created_by,
        approved_by, approved_at, disabled_reason, consecutive_failures, failing_since,
        last_success_at, last_failure_at, created_at, updated_at)
    SELECT id, tenant_id, url, description, events, status, secret_ciphertext,
        previous_secret_ciphertext, previous_secret_expires_at, signature_algorithm, created_by,
        approved_by, approved_at, disabled_reason, consecutive_failures, failing_since,
        last_success_at, last_failure_at, created_at, updated_at
    FROM webhooks;
INSERT INTO webhook_deliveries_new SELECT id, tenant_id, webhook_id, event_type, payload, status,
        attempts, next_attempt_at, last_attempt_at, last_status, last_error, last_latency_ms,
        last_response, created_at, updated_at
    FROM webhook_deliveries;
INSERT INTO webhook_attempts_new SELECT id, tenant_id, webhook_id, delivery_id, attempt,
        attempted_at, status_code, error, latency_ms, response_body
    FROM webhook_attempts;

DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
ALTER TABLE webhooks_new RENAME TO webhooks;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
ALTER TABLE webhook_attempts_new RENAME TO webhook_attempts;

DROP INDEX webhooks_new_tenant_id_id_key;
DROP INDEX webhook_deliveries_new_tenant_id_id_key;
CREATE UNIQUE INDEX webhooks_tenant_id_id_key ON webhooks (tenant_id, id);
CREATE UNIQUE INDEX webhook_deliveries_tenant_id_id_key ON webhook_deliveries (tenant_id, id);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (tenant_id, webhook_id, created_at);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (tenant_id, delivery_id, attempt);
CREATE INDEX webhook_attempts_rate_idx ON webhook_attempts (webhook_id, attempted_at);

-- One row per recipient: a notification belongs to one user of one tenant.
CREATE TABLE notifications (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    user_id     BLOB NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    data        TEXT NOT NULL,
    target_type TEXT,
    target_id   BLOB,
    created_at  TEXT NOT NULL,
    read_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX notifications_tenant_id_id_key ON notifications (tenant_id, id);
CREATE INDEX notifications_user_idx ON notifications (tenant_id, user_id, id);
