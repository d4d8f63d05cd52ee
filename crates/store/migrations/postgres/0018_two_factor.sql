-- Two-factor authentication: TOTP authenticators, recovery codes, the sign-in challenges that
-- wait for a second factor, and the tenant's requirement.
--
-- A user's TOTP secret is encrypted with the key ring (bound to the user's id); it is inactive
-- until `confirmed_at` is set. `last_step` is the last accepted 30-second step: a code of that
-- step or an earlier one is a replay. Recovery codes and challenge tokens are stored only as
-- MACs / hashes. tenant_id is NULL exactly for a super admin's rows, as in `sessions`.

ALTER TABLE tenants ADD COLUMN require_2fa text NOT NULL DEFAULT 'off'
    CHECK (require_2fa IN ('off', 'admins', 'everyone'));

CREATE TABLE totp_credentials (
    user_id      uuid PRIMARY KEY REFERENCES users (id),
    tenant_id    uuid,
    secret       text NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint,
    created_at   timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX totp_credentials_tenant_user_idx ON totp_credentials (tenant_id, user_id);

CREATE TABLE recovery_codes (
    id         uuid PRIMARY KEY,
    tenant_id  uuid,
    user_id    uuid NOT NULL REFERENCES users (id),
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX recovery_codes_tenant_user_idx ON recovery_codes (tenant_id, user_id);

-- A password accepted, a second factor awaited: the `pal_mfa_…` token's hash, single-use,
-- five minutes, five wrong codes.
CREATE TABLE mfa_challenges (
    id              uuid PRIMARY KEY,
    tenant_id       uuid,
    user_id         uuid NOT NULL REFERENCES users (id),
    token_hash      bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    used_at         timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    CONSTRAINT mfa_challenges_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX mfa_challenges_tenant_user_idx ON mfa_challenges (tenant_id, user_id);

ALTER TABLE totp_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE totp_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON totp_credentials
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON recovery_codes
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
ALTER TABLE mfa_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mfa_challenges
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON totp_credentials, recovery_codes, mfa_challenges TO palisade_app;
