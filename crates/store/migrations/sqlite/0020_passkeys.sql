-- Passkeys (WebAuthn credentials) and the pending ceremonies that create and use them.
--
-- `passkey` is webauthn-rs's serialized `Passkey` (JSON): the credential's public key, its
-- signature counter and flags. It holds no secret, so it is stored as it is (an attacker who
-- can write this table can already write `users`). `credential_id` is unique across the whole
-- deployment, not per tenant: a passwordless sign-in finds the account by it before any tenant
-- is known, and the same authenticator credential must never belong to two accounts.
-- `tenant_id` is NULL exactly for a super admin's passkeys (like `sessions`).
CREATE TABLE passkeys (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB,
    user_id       BLOB NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    credential_id BLOB NOT NULL,
    passkey       TEXT NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX passkeys_credential_id_key ON passkeys (credential_id);
CREATE INDEX passkeys_tenant_user_idx ON passkeys (tenant_id, user_id);

-- A WebAuthn ceremony in progress: webauthn-rs's state for it (JSON: the challenge and what
-- the answer must match). Single-use (`used_at`, set by one conditional UPDATE) and short-lived
-- (`expires_at`, five minutes). A passwordless sign-in (`discoverable`) has no user and no
-- tenant until the credential names them, so its rows are written and read under a system scope.
CREATE TABLE webauthn_challenges (
    id         BLOB PRIMARY KEY NOT NULL,
    tenant_id  BLOB,
    user_id    BLOB REFERENCES users (id),
    kind       TEXT NOT NULL CHECK (kind IN ('registration', 'authentication', 'discoverable')),
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    -- A passkey as the second factor of a password sign-in: the two-step challenge
    -- (mfa_challenges) this ceremony completes; spent with it.
    mfa_challenge_id BLOB
);
CREATE INDEX webauthn_challenges_user_idx ON webauthn_challenges (user_id, kind);
CREATE INDEX webauthn_challenges_expires_idx ON webauthn_challenges (expires_at);
