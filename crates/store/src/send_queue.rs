//! The send queue: an outbound message is stored `queued` with a queue row in the writer's
//! transaction; the sender claims due rows (every active tenant, system work), sends them, and
//! marks each message sent, failed or due again. Separate from `messages` because the queue is
//! its own table with its own lease and retry rules.

use crate::messages::{Message, MessageRow, MESSAGE_COLUMNS};
use crate::{Query, Result, SystemScope, TenantScope, Tx};
use palisade_domain::{ConnectionId, ConversationId, MessageId, MessageKind, TenantId, UserId};

use time::OffsetDateTime;

/// An outbound message written by a user or an API key (see [`insert_outbound`]).
#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub connection_id: ConnectionId,
    pub kind: MessageKind,
    /// `{type, <type>: {…}}`: the Graph API body without the recipient.
    pub body: serde_json::Value,
    pub text: Option<String>,
    pub author_id: Option<UserId>,
    pub created_at: OffsetDateTime,
}

/// Which sends the sender claims first: people's and integrations' messages before campaigns'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPriority {
    /// A person's answer, an API key's or an integration's message.
    Interactive,
    /// A campaign's message: claimed after every due interactive one, and sent at most once
    /// (see [`begin_attempt`]).
    Bulk,
}

impl SendPriority {
    pub const fn as_i64(self) -> i64 {
        match self {
            SendPriority::Interactive => 0,
            SendPriority::Bulk => 1,
        }
    }
}

/// Stores an outbound message as `queued` with its row in the send queue (one transaction: the
/// caller's), and moves the conversation's latest message time.
pub async fn insert_outbound(tx: &mut Tx<TenantScope>, m: &NewOutbound) -> Result<()> {
    insert_outbound_with(tx, m, SendPriority::Interactive).await
}

/// [`insert_outbound`] with the queue row's priority.
pub async fn insert_outbound_with(
    tx: &mut Tx<TenantScope>,
    m: &NewOutbound,
    priority: SendPriority,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}, author_id)
             VALUES ($1, $2, $3, $4, NULL, 'outbound', $5, $6, $7, 'queued', NULL, NULL, NULL, $8, $8, $9)"
        ))
        .bind(m.id)
        .bind(tenant)
        .bind(m.conversation_id)
        .bind(m.connection_id)
        .bind(m.kind.as_str())
        .bind(m.body.clone())
        .bind(m.text.clone())
        .bind(m.created_at)
        .bind(m.author_id),
    )
    .await?;
    tx.execute(
        Query::new(
            "INSERT INTO whatsapp_outbound_queue
                 (message_id, tenant_id, attempts, next_attempt_at, created_at, priority)
             VALUES ($1, $2, 0, $3, $3, $4)",
        )
        .bind(m.id)
        .bind(tenant)
        .bind(m.created_at)
        .bind(priority.as_i64()),
    )
    .await?;
    tx.execute(
        Query::new(
            "UPDATE conversations SET updated_at = $3,
                 last_message_at = CASE WHEN last_message_at < $3 THEN $3 ELSE last_message_at END
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(m.conversation_id)
        .bind(m.created_at),
    )
    .await?;
    crate::conversations::sync_label_activity(tx, tenant, &[m.conversation_id.as_uuid()]).await?;
    Ok(())
}

/// A claimed row of the send queue.
pub type QueuedSend = crate::lease::Claimed;

/// Claims up to `limit` due sends (every active tenant) by moving their `next_attempt_at` to
/// `lease_until`; a sender that dies mid-send only delays them (see [`crate::lease`]).
/// Interactive sends are claimed before bulk (campaign) ones.
///
/// A suspended tenant's sends are not claimed: they wait untouched (no attempt counted, no
/// backoff, `next_attempt_at` unchanged, so their order is kept) and go out, oldest first, once
/// the tenant is reactivated.
pub async fn claim_sends(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<QueuedSend>> {
    crate::lease::claim_due(
        tx,
        "whatsapp_outbound_queue",
        None,
        Some("priority"),
        now,
        lease_until,
        limit,
    )
    .await
}

/// [`claim_sends`] of one priority only: the sender claims a few campaign sends at a time,
/// each batch after checking for interactive ones, so a person's reply queued while a campaign
/// is sending waits for at most one small batch.
pub async fn claim_sends_of(
    tx: &mut Tx<SystemScope>,
    priority: SendPriority,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<QueuedSend>> {
    let only = match priority {
        SendPriority::Interactive => "priority = 0",
        SendPriority::Bulk => "priority = 1",
    };
    crate::lease::claim_due(
        tx,
        "whatsapp_outbound_queue",
        Some(only),
        None,
        now,
        lease_until,
        limit,
    )
    .await
}

/// What the sender needs: the message and its recipient (`wa_id`, or the phone's digits).
pub async fn send_job(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
) -> Result<Option<(Message, String)>> {
    #[derive(sqlx::FromRow)]
    struct Recipient {
        phone: String,
        wa_id: Option<String>,
    }
    let m: Option<MessageRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {MESSAGE_COLUMNS}, author_id FROM messages WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    let Some(m) = crate::messages::one(m)? else {
        return Ok(None);
    };
    let r: Recipient = tx
        .fetch_one(
            Query::new(
                "SELECT c.phone, c.wa_id FROM conversations v
                 JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id
                 WHERE v.tenant_id = $1 AND v.id = $2",
            )
            .bind(tenant)
            .bind(m.conversation_id),
        )
        .await?;
    let to = r
        .wa_id
        .unwrap_or_else(|| r.phone.trim_start_matches('+').to_owned());
    Ok(Some((m, to)))
}

/// Meta accepted the message: its wamid, `sent` (unless a status webhook already moved it), and
/// out of the queue.
pub async fn mark_sent(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    wamid: &str,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE messages SET wamid = $3, sent_at = $4, status_updated_at = $4,
                 status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(wamid)
        .bind(now),
    )
    .await?;
    dequeue(tx, tenant, message_id).await
}

/// Meta refused the message for good (or it could not be sent): `failed` with the error, and
/// out of the queue.
pub async fn mark_failed(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    error: serde_json::Value,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE messages SET status = 'failed', error = $3, status_updated_at = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(error)
        .bind(now),
    )
    .await?;
    dequeue(tx, tenant, message_id).await
}

async fn dequeue(tx: &mut Tx<SystemScope>, tenant: TenantId, message_id: MessageId) -> Result<()> {
    tx.execute(
        Query::new("DELETE FROM whatsapp_outbound_queue WHERE tenant_id = $1 AND message_id = $2")
            .bind(tenant)
            .bind(message_id),
    )
    .await?;
    Ok(())
}

/// A transient failure: counts the attempt and schedules the next one.
pub async fn retry_send(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE whatsapp_outbound_queue
             SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
                 attempt_started_at = NULL
             WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(next_attempt_at)
        .bind(error),
    )
    .await?;
    Ok(())
}

/// Holds a claimed bulk (campaign) send back until `until` without an attempt (it was not
/// sent: its connection is over Meta's throughput); `false` for an interactive send (not
/// held: an agent's reply is tried) or a row gone meanwhile.
pub async fn hold_bulk(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    until: OffsetDateTime,
    why: &str,
) -> Result<bool> {
    Ok(tx
        .execute(
            Query::new(
                "UPDATE whatsapp_outbound_queue SET next_attempt_at = $3, last_error = $4
                 WHERE tenant_id = $1 AND message_id = $2 AND priority = 1",
            )
            .bind(tenant)
            .bind(message_id)
            .bind(until)
            .bind(why),
        )
        .await?
        == 1)
}

/// What the sender may do with a claimed send before calling Meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An interactive send: sent, and retried after a crash (at least once).
    Interactive,
    /// A bulk send: its attempt is now recorded (commit before the Graph call).
    BulkStarted,
    /// A bulk send whose earlier attempt started and never finished (the sender died mid-send):
    /// its outcome is unknown, so it is not sent again.
    BulkInterrupted,
    /// The queue row is gone (sent or deleted meanwhile).
    Gone,
}

/// Before a send: an interactive one goes ahead; a bulk one records that its attempt started,
/// unless an earlier attempt already did (then [`Attempt::BulkInterrupted`]). Bulk sends are
/// at most once: a crash between Meta's answer and [`mark_sent`] must not send a campaign
/// message twice.
pub async fn begin_attempt(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    now: OffsetDateTime,
) -> Result<Attempt> {
    #[derive(sqlx::FromRow)]
    struct Row {
        priority: i64,
        attempt_started_at: Option<OffsetDateTime>,
    }
    let lock = tx.row_lock();
    let row: Option<Row> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT priority, attempt_started_at FROM whatsapp_outbound_queue
                 WHERE tenant_id = $1 AND message_id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    let Some(row) = row else {
        return Ok(Attempt::Gone);
    };
    if row.priority == SendPriority::Interactive.as_i64() {
        return Ok(Attempt::Interactive);
    }
    if row.attempt_started_at.is_some() {
        return Ok(Attempt::BulkInterrupted);
    }
    tx.execute(
        Query::new(
            "UPDATE whatsapp_outbound_queue SET attempt_started_at = $3
             WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(now),
    )
    .await?;
    Ok(Attempt::BulkStarted)
}

/// How many bulk sends are in the queue for a connection (due or not): the dispatcher tops
/// the queue up to its budget rather than piling a backlog in it.
pub async fn bulk_backlog(tx: &mut Tx<SystemScope>, connection_id: ConnectionId) -> Result<i64> {
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i64,
    }
    let r: Row = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM whatsapp_outbound_queue q
                 JOIN messages m ON m.tenant_id = q.tenant_id AND m.id = q.message_id
                 WHERE q.priority = 1 AND m.connection_id = $1",
            )
            .bind(connection_id),
        )
        .await?;
    Ok(r.n)
}
