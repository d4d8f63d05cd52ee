-- API keys: stored only as SHA-256 hashes of the secret; scopes and allowed addresses as JSON.

CREATE TABLE api_keys (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL REFERENCES tenants (id),
    name              TEXT NOT NULL,
    prefix            TEXT NOT NULL,
    key_hash          BLOB NOT NULL,
    scopes            TEXT NOT NULL,
    allowed_ips       TEXT,
    expires_at        TEXT,
    created_by        BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_used_at      TEXT,
    last_used_ip      TEXT,
    total_requests    INTEGER NOT NULL DEFAULT 0,
    revoked_at        TEXT,
    revoked_by        BLOB,
    revocation_reason TEXT,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_tenant_id_id_key ON api_keys (tenant_id, id);
CREATE INDEX api_keys_tenant_creator_idx ON api_keys (tenant_id, created_by);

-- The change feed learns a fourth kind. SQLite cannot alter a CHECK constraint, so the table
-- (a short-lived feed) is rebuilt.
CREATE TABLE auth_changes_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('session', 'user', 'tenant', 'api_key')),
    subject_id BLOB NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO auth_changes_new (seq, kind, subject_id, created_at)
    SELECT seq, kind, subject_id, created_at FROM auth_changes;
DROP TABLE auth_changes;
ALTER TABLE auth_changes_new RENAME TO auth_changes;
CREATE INDEX auth_changes_created_idx ON auth_changes (created_at);
