-- Security detections (docs/security.md, "Detections and alerts"). A rule that sees an attack
-- or a risky change raises an alert about a subject (a user, a client address, an API key, a
-- webhook, the tenant); while the alert is not resolved, a repeat of the same rule on the same
-- subject bumps `occurrences` and `last_seen_at` instead of adding a row.
CREATE TABLE security_alerts (
    id uuid PRIMARY KEY,
    -- NULL for a platform alert (an address spraying several tenants, a super admin created, a
    -- failed backup): seen only by super admins.
    tenant_id uuid REFERENCES tenants (id),
    -- The tenant, or the nil UUID for the platform: NULLs never collide in a unique index, so
    -- the one-unresolved-alert rule needs a non-NULL key (as `audit_log.chain_id` does).
    tenant_key uuid NOT NULL,
    rule text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    subject_type text NOT NULL,
    subject_id text NOT NULL,
    subject_label text,
    summary text NOT NULL,
    occurrences bigint NOT NULL DEFAULT 1,
    -- The ids of the audit records that triggered it (a JSON array, newest last, capped).
    evidence jsonb NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    note text,
    acknowledged_by uuid REFERENCES users (id),
    acknowledged_at timestamptz,
    resolved_by uuid REFERENCES users (id),
    resolved_at timestamptz
);
-- One unresolved (open or acknowledged) alert per tenant, rule and subject: the target of the
-- raise-or-bump upsert.
CREATE UNIQUE INDEX security_alerts_unresolved_key
    ON security_alerts (tenant_key, rule, subject_type, subject_id) WHERE status <> 'resolved';
-- A tenant's alerts newest first (ids are UUID v7).
CREATE INDEX security_alerts_tenant_idx ON security_alerts (tenant_id, id);
-- The metrics' time window.
CREATE INDEX security_alerts_tenant_seen_idx ON security_alerts (tenant_id, last_seen_at);

ALTER TABLE security_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE security_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON security_alerts
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE ON security_alerts TO palisade_app;

-- The client addresses (and, with a GeoIP database, countries: `country:XX`) each API key has
-- been used from, for the "API key used from a new address" rule. A row is written the first
-- time a node sees a key from an address; nodes remember what they wrote, so a request costs no
-- write once its address is known.
CREATE TABLE api_key_addresses (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    api_key_id uuid NOT NULL,
    address text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, api_key_id, address),
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE api_key_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_key_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_key_addresses
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, DELETE ON api_key_addresses TO palisade_app;
