-- Email verification and password reset.
--
-- `users.email_verified_at`: when the user proved they read mail at their address (a code from
-- the verification mail, an accepted invitation, or a password reset by mail). Users that
-- existed before this migration stay unverified: nothing proved their address; in the default
-- `optional` mode nothing changes for them, in `required` mode they verify with a resent code.
-- Super admins were created by the operator at the command line, who vouched for the address.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
UPDATE users SET email_verified_at = created_at WHERE tenant_id IS NULL;

-- One-time 6-digit codes that verify a user's email address. Only a keyed MAC of the code is
-- stored (a 6-digit code's plain hash would be guessed from a database copy in a moment). A code
-- lives 10 minutes, is used once (`used_at`, also set when a newer code voids it) and dies after
-- 5 wrong tries (`attempts`). `reason` separates resent codes, which are rate-limited, from the
-- one sent at registration.
CREATE TABLE email_codes (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB,
    user_id     BLOB NOT NULL REFERENCES users (id),
    code_hash   BLOB NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('registration', 'resend')),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX email_codes_tenant_user_idx ON email_codes (tenant_id, user_id, created_at);

-- Password reset tokens (`pal_pr_…`), stored as a SHA-256 hash. A token lives 30 minutes, is
-- used once, and a newer one voids the older ones (`used_at` set).
CREATE TABLE password_resets (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB,
    user_id     BLOB NOT NULL REFERENCES users (id),
    token_hash  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX password_resets_token_hash_key ON password_resets (token_hash);
CREATE INDEX password_resets_tenant_user_idx ON password_resets (tenant_id, user_id, created_at);
