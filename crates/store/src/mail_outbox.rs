//! The mail outbox: mails written in the transaction of the change that causes them, sent by a
//! background worker (see the migration `0016_mail_outbox` for the claiming rules).

use crate::outbox::{self, Outbox};
use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{MailId, UserId};
use time::OffsetDateTime;

/// A mail to queue. `payload` is already encrypted by the caller.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub id: MailId,
    pub user_id: Option<UserId>,
    pub kind: &'a str,
    pub to_address: &'a str,
    pub payload: &'a str,
}

/// Queues a mail in the transaction's tenant (none for a platform scope), due now.
pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    mail: NewMail<'_>,
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "INSERT INTO mail_outbox (id, tenant_id, user_id, kind, to_address, payload, status,
                 attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
        )
        .bind(mail.id)
        .bind(tenant)
        .bind(mail.user_id)
        .bind(mail.kind)
        .bind(mail.to_address)
        .bind(mail.payload)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// A claimed mail: what the worker needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: uuid::Uuid,
    pub tenant_id: Option<uuid::Uuid>,
    pub kind: String,
    pub to_address: String,
    pub payload: String,
    pub attempts: i64,
}

/// Claims up to `limit` due pending mails (every tenant: system work) by setting their lease
/// `locked_until` to `lease_until` ([`outbox::claim_due`] says when a row is due and why two
/// workers never both win it).
pub async fn claim_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ClaimedMail>> {
    outbox::claim_due(
        tx,
        Outbox::Mail,
        "id, tenant_id, kind, to_address, payload, CAST(attempts AS BIGINT) AS attempts",
        now,
        lease_until,
        limit,
    )
    .await
}

/// The mail was accepted: `sent`, its body dropped. Only while it is still pending (a mail a
/// slower worker also sent after its lease ran out is recorded once).
pub async fn mark_sent(tx: &mut Tx<SystemScope>, id: MailId, now: OffsetDateTime) -> Result<bool> {
    outbox::mark_sent(tx, Outbox::Mail, id.as_uuid(), now).await
}

/// A transient failure: counts the attempt, records why and frees the row for
/// `next_attempt_at`.
pub async fn retry(
    tx: &mut Tx<SystemScope>,
    id: MailId,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<bool> {
    outbox::retry(tx, Outbox::Mail, id.as_uuid(), next_attempt_at, error).await
}

/// Given up (a permanent refusal, or too many attempts): `failed` with the reason, the body
/// dropped.
pub async fn mark_failed(tx: &mut Tx<SystemScope>, id: MailId, error: &str) -> Result<bool> {
    outbox::mark_failed(tx, Outbox::Mail, id.as_uuid(), error).await
}

/// Deletes sent and failed mails created before `cutoff`, at most `limit` of them. Returns how
/// many went.
pub async fn prune(tx: &mut Tx<SystemScope>, cutoff: OffsetDateTime, limit: i64) -> Result<u64> {
    outbox::prune(tx, Outbox::Mail, cutoff, limit).await
}
