-- Broadcast campaigns: one approved template sent to an audience of contacts, paced per
-- connection by the dispatcher (core::campaigns::dispatch). See the PostgreSQL twin for the
-- notes on each table.

CREATE TABLE campaigns (
    id                 BLOB PRIMARY KEY NOT NULL,
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    name               TEXT NOT NULL,
    connection_id      BLOB NOT NULL,
    template_name      TEXT NOT NULL,
    template_language  TEXT NOT NULL,
    parameters         TEXT NOT NULL,
    audience           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                           ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    scheduled_at       TEXT,
    started_at         TEXT,
    completed_at       TEXT,
    lease_until        TEXT,
    created_by         BLOB,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX campaigns_tenant_id_id_key ON campaigns (tenant_id, id);
CREATE INDEX campaigns_tenant_status ON campaigns (tenant_id, status, id);
CREATE INDEX campaigns_status ON campaigns (status);

CREATE TABLE campaign_recipients (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    campaign_id  BLOB NOT NULL,
    contact_id   BLOB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'skipped', 'dispatched')),
    skip_reason  TEXT,
    message_id   BLOB,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, contact_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_recipients_tenant_campaign_status
    ON campaign_recipients (tenant_id, campaign_id, status, contact_id);
CREATE INDEX campaign_recipients_tenant_message ON campaign_recipients (tenant_id, message_id);

ALTER TABLE whatsapp_outbound_queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE whatsapp_outbound_queue ADD COLUMN attempt_started_at TEXT;

-- The opt-out source gains `whatsapp` (131050). SQLite cannot change a column's CHECK in
-- place: a new column takes the values and the old one (with its CHECK) is dropped. A CHECK
-- added with a column is tested against the existing rows while the new column is still
-- NULL, so the new CHECK cannot say "an opt-out has a source"; it keeps every other rule.
ALTER TABLE contacts ADD COLUMN opt_out_source_new TEXT CHECK (
    (opt_out_source_new IS NULL OR opt_out_source_new IN ('api', 'keyword', 'whatsapp'))
    AND (opt_out_source_new IS NULL OR opted_out_at IS NOT NULL)
    AND (marketing_opt_in = 0 OR (opted_in_at IS NOT NULL AND opted_out_at IS NULL))
    AND (opted_out_at IS NULL OR (marketing_opt_in = 0 AND opted_in_at IS NULL))
);
UPDATE contacts SET opt_out_source_new = opt_out_source;
ALTER TABLE contacts DROP COLUMN opt_out_source;
ALTER TABLE contacts RENAME COLUMN opt_out_source_new TO opt_out_source;
