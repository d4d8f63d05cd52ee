-- The login history: one row per sign-in attempt on an existing account (an unknown email has
-- no history), written in the sign-in's transaction. Shown to the user
-- (`GET /api/v1/auth/login-history`) and to the tenant's admins; kept 180 days.
--
-- `device_hash` is a keyed MAC of the device (browser family, OS family and network: /24 for
-- IPv4, /64 for IPv6) of a successful sign-in, so the new-device check compares hashes and the
-- network itself is not kept beyond the row's `ip`.
CREATE TABLE login_history (
    id uuid PRIMARY KEY,
    -- NULL exactly for a super admin (who belongs to no tenant), as for sessions.
    tenant_id uuid,
    user_id uuid NOT NULL REFERENCES users (id),
    at timestamptz NOT NULL,
    ip text,
    browser text,
    os text,
    result text NOT NULL CHECK (result IN ('success', 'failure', 'locked', 'mfa_failure')),
    method text NOT NULL CHECK (method IN ('password', 'passkey', 'totp', 'recovery_code')),
    device_hash bytea,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
-- A user's history newest first (ids are UUID v7, so id order is time order).
CREATE INDEX login_history_user_idx ON login_history (tenant_id, user_id, id);
-- The new-device check: this user's successful sign-ins from a device since a time.
CREATE INDEX login_history_device_idx ON login_history (tenant_id, user_id, device_hash, at);
-- Retention pruning.
CREATE INDEX login_history_at_idx ON login_history (at);

ALTER TABLE login_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON login_history
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, DELETE ON login_history TO palisade_app;
