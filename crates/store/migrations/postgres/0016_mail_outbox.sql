-- The mail outbox. A mail is written in the transaction of the change that causes it (a
-- registration, a password reset, a new sign-in), so it exists exactly when the change does,
-- and is sent by a background worker with retries. A worker claims a row by setting
-- `locked_until` (a lease); a row whose lease ran out is claimed again, so a crash between
-- claiming and sending delays a mail but never loses it.
--
-- `payload` is the mail (subject, plain text, HTML) encrypted with the key ring: bodies carry
-- one-time codes and links. It is emptied once the mail is sent or given up.
CREATE TABLE mail_outbox (
    id uuid PRIMARY KEY,
    -- The tenant the mail belongs to (NULL for a super admin's mail): row-level security.
    tenant_id uuid REFERENCES tenants (id),
    user_id uuid REFERENCES users (id),
    -- What the mail is, e.g. `email_verification`, `password_reset`.
    kind text NOT NULL,
    to_address text NOT NULL,
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
-- What the worker scans: due pending mails, oldest first.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, created_at);

ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE mail_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mail_outbox
    USING (tenant_id = app_tenant_id() OR app_is_system())
    WITH CHECK (tenant_id = app_tenant_id() OR app_is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON mail_outbox TO palisade_app;
