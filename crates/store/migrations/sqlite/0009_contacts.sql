-- Contacts become editable records: email, tags, custom attributes and marketing consent.
--
-- Consent is the current state, kept consistent by the CHECK below:
--   opted in:   marketing_opt_in = 1, opted_in_at set,  opted_out_at and opt_out_source NULL;
--   opted out:  marketing_opt_in = 0, opted_out_at and opt_out_source ('api' | 'keyword') set,
--               opted_in_at NULL;
--   neither:    marketing_opt_in = 0, all three NULL (never asked).
-- The history of changes is in the audit log.

ALTER TABLE contacts ADD COLUMN email TEXT;
-- A JSON array of normalised tags.
ALTER TABLE contacts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
-- A JSON object of scalar values.
ALTER TABLE contacts ADD COLUMN custom_attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN marketing_opt_in INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN opted_in_at TEXT;
ALTER TABLE contacts ADD COLUMN opted_out_at TEXT;
ALTER TABLE contacts ADD COLUMN opt_out_source TEXT CHECK (
    (opt_out_source IS NULL OR opt_out_source IN ('api', 'keyword'))
    AND ((opted_out_at IS NULL) = (opt_out_source IS NULL))
    AND (marketing_opt_in = 0 OR (opted_in_at IS NOT NULL AND opted_out_at IS NULL))
    AND (opted_out_at IS NULL OR (marketing_opt_in = 0 AND opted_in_at IS NULL))
);

CREATE INDEX contacts_tenant_opted_out ON contacts (tenant_id, opted_out_at);
