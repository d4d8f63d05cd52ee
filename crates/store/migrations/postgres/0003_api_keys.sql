-- API keys: stored only as SHA-256 hashes of the secret; scopes and allowed addresses as JSON.

CREATE TABLE api_keys (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    name              text NOT NULL,
    prefix            text NOT NULL,
    key_hash          bytea NOT NULL,
    scopes            jsonb NOT NULL,
    allowed_ips       jsonb,
    expires_at        timestamptz,
    created_by        uuid NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_used_at      timestamptz,
    last_used_ip      text,
    total_requests    bigint NOT NULL DEFAULT 0,
    revoked_at        timestamptz,
    revoked_by        uuid,
    revocation_reason text,
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX api_keys_tenant_creator_idx ON api_keys (tenant_id, created_by);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO palisade_app;

ALTER TABLE auth_changes DROP CONSTRAINT auth_changes_kind_check;
ALTER TABLE auth_changes ADD CONSTRAINT auth_changes_kind_check
    CHECK (kind IN ('session', 'user', 'tenant', 'api_key'));
