-- Two-factor authentication: TOTP authenticators, recovery codes, the sign-in challenges that
-- wait for a second factor, and the tenant's requirement.
--
-- A user's TOTP secret is encrypted with the key ring (bound to the user's id); it is inactive
-- until `confirmed_at` is set. `last_step` is the last accepted 30-second step: a code of that
-- step or an earlier one is a replay. Recovery codes and challenge tokens are stored only as
-- MACs / hashes. tenant_id is NULL exactly for a super admin's rows, as in `sessions`.

ALTER TABLE tenants ADD COLUMN require_2fa TEXT NOT NULL DEFAULT 'off'
    CHECK (require_2fa IN ('off', 'admins', 'everyone'));

CREATE TABLE totp_credentials (
    user_id      BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    tenant_id    BLOB,
    secret       TEXT NOT NULL,
    confirmed_at TEXT,
    last_step    INTEGER,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX totp_credentials_tenant_user_idx ON totp_credentials (tenant_id, user_id);

CREATE TABLE recovery_codes (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB,
    user_id    BLOB NOT NULL REFERENCES users (id),
    code_hash  BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX recovery_codes_tenant_user_idx ON recovery_codes (tenant_id, user_id);

-- A password accepted, a second factor awaited: the `pal_mfa_…` token's hash, single-use,
-- five minutes, five wrong codes.
CREATE TABLE mfa_challenges (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB,
    user_id         BLOB NOT NULL REFERENCES users (id),
    token_hash      BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    used_at         TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX mfa_challenges_token_hash_key ON mfa_challenges (token_hash);
CREATE INDEX mfa_challenges_tenant_user_idx ON mfa_challenges (tenant_id, user_id);
