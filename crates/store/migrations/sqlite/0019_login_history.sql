-- The login history: one row per sign-in attempt on an existing account (an unknown email has
-- no history), written in the sign-in's transaction. Shown to the user
-- (`GET /api/v1/auth/login-history`) and to the tenant's admins; kept 180 days.
CREATE TABLE login_history (
    id BLOB PRIMARY KEY NOT NULL,
    -- NULL exactly for a super admin (who belongs to no tenant), as for sessions.
    tenant_id BLOB,
    user_id BLOB NOT NULL REFERENCES users (id),
    at TEXT NOT NULL,
    ip TEXT,
    browser TEXT,
    os TEXT,
    result TEXT NOT NULL CHECK (result IN ('success', 'failure', 'locked', 'mfa_failure')),
    method TEXT NOT NULL CHECK (method IN ('password', 'passkey', 'totp', 'recovery_code')),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
-- A user's history newest first (ids are UUID v7, so id order is time order).
CREATE INDEX login_history_user_idx ON login_history (tenant_id, user_id, id);
-- Retention pruning.
CREATE INDEX login_history_at_idx ON login_history (at);

-- The devices a user has signed in from successfully, for the new-device alert: a keyed MAC of
-- browser family + OS family + network (/24 for IPv4, /64 for IPv6), never the parts
-- themselves. Kept as long as the user (not pruned with the history), so an account unused for
-- longer than the history's retention still alerts on a new device.
CREATE TABLE login_devices (
    id BLOB PRIMARY KEY NOT NULL,
    tenant_id BLOB,
    user_id BLOB NOT NULL REFERENCES users (id),
    device_hash BLOB NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    -- The sighting before `last_seen_at` (NULL after the first), returned by the upsert that
    -- records a sign-in, so the new-device decision is made in that one statement.
    previous_seen_at TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
-- One row per device of a user (user ids are unique across tenants; tenant_id is NULL for
-- super admins, and NULLs would not collide in a unique index).
CREATE UNIQUE INDEX login_devices_user_device_key ON login_devices (user_id, device_hash);
CREATE INDEX login_devices_tenant_user_idx ON login_devices (tenant_id, user_id);
