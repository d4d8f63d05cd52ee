//! The mail outbox: mails written in the transaction of the change that causes them, sent by a
//! background worker (see the migration `0016_mail_outbox` for the claiming rules).

use crate::{Backend, Query, Result, Scope, SystemScope, Tx};
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
/// `locked_until` to `lease_until`. A mail is due when its `next_attempt_at` has come and it
/// has no live lease; a lease that ran out (a worker that died mid-send) makes it due again.
///
/// Safe with several workers: on PostgreSQL concurrent claims skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`), on SQLite the single writer runs one claim at a time, and the
/// update is conditional on the row still being unleased either way.
pub async fn claim_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ClaimedMail>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // A materialized CTE picks the rows once (see `send_queue::claim_sends` for why).
    tx.fetch_all(
        Query::new(format!(
            "WITH due AS MATERIALIZED (
                SELECT id FROM mail_outbox
                WHERE status = 'pending' AND next_attempt_at <= $1
                  AND (locked_until IS NULL OR locked_until <= $1)
                ORDER BY next_attempt_at, id LIMIT $3 {lock})
             UPDATE mail_outbox SET locked_until = $2
             WHERE id IN (SELECT id FROM due) AND status = 'pending'
               AND (locked_until IS NULL OR locked_until <= $1)
             RETURNING id, tenant_id, kind, to_address, payload, CAST(attempts AS BIGINT) AS attempts"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit),
    )
    .await
}

/// The mail was accepted: `sent`, its body dropped. Only while it is still pending (a mail a
/// slower worker also sent after its lease ran out is recorded once).
pub async fn mark_sent(tx: &mut Tx<SystemScope>, id: MailId, now: OffsetDateTime) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE mail_outbox SET status = 'sent', payload = '', sent_at = $2,
                     attempts = attempts + 1, locked_until = NULL
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    Ok(n > 0)
}

/// A transient failure: counts the attempt, records why and frees the row for
/// `next_attempt_at`.
pub async fn retry(
    tx: &mut Tx<SystemScope>,
    id: MailId,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2,
                     locked_until = NULL, last_error = $3
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(next_attempt_at)
            .bind(error),
        )
        .await?;
    Ok(n > 0)
}

/// Given up (a permanent refusal, or too many attempts): `failed` with the reason, the body
/// dropped.
pub async fn mark_failed(tx: &mut Tx<SystemScope>, id: MailId, error: &str) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE mail_outbox SET status = 'failed', payload = '', attempts = attempts + 1,
                     locked_until = NULL, last_error = $2
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(error),
        )
        .await?;
    Ok(n > 0)
}

/// Deletes sent and failed mails created before `cutoff`, at most `limit` of them. Returns how
/// many went.
pub async fn prune(tx: &mut Tx<SystemScope>, cutoff: OffsetDateTime, limit: i64) -> Result<u64> {
    tx.execute(
        Query::new(
            "DELETE FROM mail_outbox WHERE id IN (
                 SELECT id FROM mail_outbox
                 WHERE status <> 'pending' AND created_at < $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit),
    )
    .await
}
