-- Security detections (docs/security.md, "Detections and alerts"). A rule that sees an attack
-- or a risky change raises an alert about a subject (a user, a client address, an API key, a
-- webhook, the tenant); while the alert is not resolved, a repeat of the same rule on the same
-- subject bumps `occurrences` and `last_seen_at` instead of adding a row.
CREATE TABLE security_alerts (
    id BLOB PRIMARY KEY NOT NULL,
    -- NULL for a platform alert (an address spraying several tenants, a super admin created, a
    -- failed backup): seen only by super admins.
    tenant_id BLOB REFERENCES tenants (id),
    -- The tenant, or the nil UUID for the platform: NULLs never collide in a unique index, so
    -- the one-unresolved-alert rule needs a non-NULL key (as `audit_log.chain_id` does).
    tenant_key BLOB NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_label TEXT,
    summary TEXT NOT NULL,
    occurrences INTEGER NOT NULL DEFAULT 1,
    -- The ids of the audit records that triggered it (a JSON array, newest last, capped).
    evidence TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    note TEXT,
    acknowledged_by BLOB REFERENCES users (id),
    acknowledged_at TEXT,
    resolved_by BLOB REFERENCES users (id),
    resolved_at TEXT
);
-- One unresolved (open or acknowledged) alert per tenant, rule and subject: the target of the
-- raise-or-bump upsert.
CREATE UNIQUE INDEX security_alerts_unresolved_key
    ON security_alerts (tenant_key, rule, subject_type, subject_id) WHERE status <> 'resolved';
-- A tenant's alerts newest first (ids are UUID v7).
CREATE INDEX security_alerts_tenant_idx ON security_alerts (tenant_id, id);
-- The metrics' time window.
CREATE INDEX security_alerts_tenant_seen_idx ON security_alerts (tenant_id, last_seen_at);

-- The client addresses (and, with a GeoIP database, countries: `country:XX`) each API key has
-- been used from, for the "API key used from a new address" rule. A row is written the first
-- time a node sees a key from an address; nodes remember what they wrote, so a request costs no
-- write once its address is known.
CREATE TABLE api_key_addresses (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    api_key_id BLOB NOT NULL,
    address TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, api_key_id, address),
    FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE
);
