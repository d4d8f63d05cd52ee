-- Broadcast campaigns: one approved template sent to an audience of contacts, paced per
-- connection by the dispatcher (core::campaigns::dispatch).
--
-- `campaign_recipients` is the audience, materialised when the campaign starts (one row per
-- targeted contact): `pending` until the dispatcher queues its message, `skipped` with the
-- reason (no consent, opted out, a missing parameter), or `dispatched` with the message it
-- queued. The shown status of a dispatched recipient is its message's. The primary key makes
-- a contact a campaign's recipient at most once, and the dispatcher's
-- `UPDATE … WHERE status = 'pending'` hands each row to one unit of work.
--
-- No foreign key to the connection: a connection can be deleted (its campaigns then wait, and
-- the dispatcher skips them); none to the message either (erasure deletes messages).

CREATE TABLE campaigns (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    name               text NOT NULL,
    connection_id      uuid NOT NULL,
    template_name      text NOT NULL,
    template_language  text NOT NULL,
    -- [{type: literal, value} | {type: contact_field, field, fallback?}], one per variable.
    parameters         jsonb NOT NULL,
    -- {tags?, contact_ids?, exclude_tags?}
    audience           jsonb NOT NULL,
    status             text NOT NULL CHECK (status IN
                           ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    scheduled_at       timestamptz,
    started_at         timestamptz,
    completed_at       timestamptz,
    -- The dispatcher's lease: the node dispatching this campaign until then.
    lease_until        timestamptz,
    created_by         uuid,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT campaigns_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX campaigns_tenant_status ON campaigns (tenant_id, status, id);
CREATE INDEX campaigns_status ON campaigns (status);

CREATE TABLE campaign_recipients (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    campaign_id  uuid NOT NULL,
    contact_id   uuid NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'skipped', 'dispatched')),
    skip_reason  text,
    message_id   uuid,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, contact_id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_recipients_tenant_campaign_status
    ON campaign_recipients (tenant_id, campaign_id, status, contact_id);
CREATE INDEX campaign_recipients_tenant_message ON campaign_recipients (tenant_id, message_id);

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON campaigns TO palisade_app;

ALTER TABLE campaign_recipients ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaign_recipients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaign_recipients
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON campaign_recipients TO palisade_app;

-- The send queue's priority: 0 for people's and integrations' messages, 1 for campaigns'
-- (bulk). The sender claims lower priorities first, so an agent's reply never waits behind a
-- campaign. `attempt_started_at`: set (committed) before a bulk message's Graph call; a bulk
-- row found with it set was interrupted mid-send, so its outcome is unknown and it is failed
-- (`outcome_unknown`) instead of being sent a second time.
ALTER TABLE whatsapp_outbound_queue ADD COLUMN priority bigint NOT NULL DEFAULT 0;
ALTER TABLE whatsapp_outbound_queue ADD COLUMN attempt_started_at timestamptz;

-- WhatsApp's 131050 (the contact stopped marketing messages) opts a contact out: source
-- `whatsapp`.
ALTER TABLE contacts DROP CONSTRAINT contacts_consent_check;
ALTER TABLE contacts ADD CONSTRAINT contacts_consent_check CHECK (
    (opt_out_source IS NULL OR opt_out_source IN ('api', 'keyword', 'whatsapp'))
    AND ((opted_out_at IS NULL) = (opt_out_source IS NULL))
    AND (NOT marketing_opt_in OR (opted_in_at IS NOT NULL AND opted_out_at IS NULL))
    AND (opted_out_at IS NULL OR (NOT marketing_opt_in AND opted_in_at IS NULL))
);
