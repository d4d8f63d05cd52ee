-- Contacts become editable records: email, tags, custom attributes and marketing consent.
--
-- Consent is the current state, kept consistent by contacts_consent_check:
--   opted in:   marketing_opt_in, opted_in_at set, opted_out_at and opt_out_source NULL;
--   opted out:  NOT marketing_opt_in, opted_out_at and opt_out_source ('api' | 'keyword') set,
--               opted_in_at NULL;
--   neither:    NOT marketing_opt_in, all three NULL (never asked).
-- The history of changes is in the audit log. The table keeps its RLS policy and grants (0006).

ALTER TABLE contacts ADD COLUMN email text;
-- A JSON array of normalised tags.
ALTER TABLE contacts ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
-- A JSON object of scalar values.
ALTER TABLE contacts ADD COLUMN custom_attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false;
ALTER TABLE contacts ADD COLUMN opted_in_at timestamptz;
ALTER TABLE contacts ADD COLUMN opted_out_at timestamptz;
ALTER TABLE contacts ADD COLUMN opt_out_source text;
ALTER TABLE contacts ADD CONSTRAINT contacts_consent_check CHECK (
    (opt_out_source IS NULL OR opt_out_source IN ('api', 'keyword'))
    AND ((opted_out_at IS NULL) = (opt_out_source IS NULL))
    AND (NOT marketing_opt_in OR (opted_in_at IS NOT NULL AND opted_out_at IS NULL))
    AND (opted_out_at IS NULL OR (NOT marketing_opt_in AND opted_in_at IS NULL))
);

CREATE INDEX contacts_tenant_opted_out ON contacts (tenant_id, opted_out_at);
-- `?tag=` filter.
CREATE INDEX contacts_tags ON contacts USING gin (tags jsonb_path_ops);
