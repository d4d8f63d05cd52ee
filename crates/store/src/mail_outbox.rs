//! The mail outbox: mails written in the transaction of the change that causes them, sent by a
//! background worker (see the migration `0016_mail_outbox` for the claiming rules).

use crate::outbox::{Outbox, Queue};
use crate::{Query, Result, Scope, Tx};
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

/// The queue's statements: claim with a lease, record the outcome, prune
/// ([`outbox::Queue`]).
pub const QUEUE: Queue<MailId, ClaimedMail> = Queue::new(
    Outbox::Mail,
    "id, tenant_id, kind, to_address, payload, CAST(attempts AS BIGINT) AS attempts",
);
