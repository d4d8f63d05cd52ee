-- The platform's security alert webhook (`PALISADE_SECURITY_ALERT_WEBHOOK`) as a durable
-- outbox, like `mail_outbox`: a row is written in the transaction that opens the alert, so the
-- delivery exists exactly when the alert does, and a background worker sends it with retries
-- and a lease (`locked_until`): a node that dies mid-send, or a receiver that is down for
-- hours, delays an alert but never loses it.
--
-- `payload` is the signed body (the `security.alert` event, as the tenants' webhooks carry it);
-- `message_id` is its `webhook-id`, the same on every attempt so a receiver can drop repeats.
CREATE TABLE alert_webhook_outbox (
    id uuid PRIMARY KEY,
    -- The alert's tenant (NULL for a platform alert): row-level security, as for the alert.
    tenant_id uuid REFERENCES tenants (id),
    alert_id uuid NOT NULL REFERENCES security_alerts (id),
    message_id text NOT NULL,
    payload text NOT NULL,
    -- pending | sent | failed
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL,
    sent_at timestamptz
);
-- What the worker scans: due pending deliveries, oldest first.
CREATE INDEX alert_webhook_outbox_due ON alert_webhook_outbox (next_attempt_at)
    WHERE status = 'pending';

ALTER TABLE alert_webhook_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_webhook_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_webhook_outbox
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_webhook_outbox TO palisade_app;
