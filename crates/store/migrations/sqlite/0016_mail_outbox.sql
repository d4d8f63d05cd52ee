-- The mail outbox. A mail is written in the transaction of the change that causes it (a
-- registration, a password reset, a new sign-in), so it exists exactly when the change does,
-- and is sent by a background worker with retries. A worker claims a row by setting
-- `locked_until` (a lease); a row whose lease ran out is claimed again, so a crash between
-- claiming and sending delays a mail but never loses it.
--
-- `payload` is the mail (subject, plain text, HTML) encrypted with the key ring: bodies carry
-- one-time codes and links. It is emptied once the mail is sent or given up.
CREATE TABLE mail_outbox (
    id BLOB PRIMARY KEY NOT NULL,
    -- The tenant the mail belongs to (NULL for a super admin's mail): row-level security.
    tenant_id BLOB REFERENCES tenants (id),
    user_id BLOB REFERENCES users (id),
    -- What the mail is, e.g. `email_verification`, `password_reset`.
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending | sent | failed
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
-- What the worker scans: due pending mails, oldest first.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, created_at);
