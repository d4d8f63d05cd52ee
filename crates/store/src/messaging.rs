//! Conversations and messages, and the contacts inbound messages create (the contact
//! records themselves: `contacts`).
//!
//! Writes come from processing Meta's webhooks, which is system work: the tenant is that of the
//! connection the webhook was verified for, and every statement binds it explicitly. Reads come
//! from users and API keys, under their [`TenantScope`].

use crate::query::{member_chunks, member_of, placeholders, tenant_is};
use crate::{Backend, Query, Result, SystemScope, TenantScope, Tx};
use palisade_domain::TenantId;
use sqlx::types::Json;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Conversation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    pub connection_id: Uuid,
    /// `open`, `pending` or `resolved`.
    pub status: String,
    pub last_message_at: OffsetDateTime,
    pub last_inbound_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The user handling it.
    pub assignee_id: Option<Uuid>,
    pub labels: Json<Vec<String>>,
    pub contact_phone: String,
    pub contact_name: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub connection_id: Uuid,
    /// WhatsApp's id; `None` until an outbound message has been accepted by Meta.
    pub wamid: Option<String>,
    /// `inbound`, `outbound` or `internal` (notes).
    pub direction: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    /// The message object as Meta sent it.
    pub body: Json<serde_json::Value>,
    pub text: Option<String>,
    /// `received`, `queued`, `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    pub error: Option<Json<serde_json::Value>>,
    pub context_wamid: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub status_updated_at: OffsetDateTime,
    /// The user who wrote an outbound message.
    pub author_id: Option<Uuid>,
    /// An inbound media message's file (filled by the reads that show it, not by this query).
    #[sqlx(skip)]
    pub media: Option<crate::media::MessageMedia>,
}

// ---- writes (processing Meta's webhooks) ----

#[derive(sqlx::FromRow)]
struct IdRow {
    id: Uuid,
}

/// A customer seen in an inbound webhook (see [`upsert_contacts`]).
#[derive(Debug, Clone)]
pub struct Sender {
    /// E.164 (`+` and digits).
    pub phone: String,
    /// WhatsApp's id of the customer (the digits Meta sends as `from`).
    pub wa_id: String,
    pub profile_name: Option<String>,
}

/// The contacts with these phone numbers, created if new, in one multi-row upsert per 100
/// senders (no lookup that a planner could get wrong on a table without statistics yet); a
/// changed WhatsApp profile name is recorded, and a contact created by hand gets its WhatsApp
/// id. Rows are written in phone order, so concurrent processors lock them in one order.
pub async fn upsert_contacts(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    senders: &[Sender],
    now: OffsetDateTime,
) -> Result<UpsertedContacts> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        phone: String,
    }
    let mut ids = HashMap::with_capacity(senders.len());
    let mut created = Vec::new();
    let mut senders: Vec<&Sender> = senders.iter().collect();
    senders.sort_unstable_by(|a, b| a.phone.cmp(&b.phone));
    senders.dedup_by(|a, b| a.phone == b.phone);
    let postgres = tx.backend() == Backend::Postgres;
    // PostgreSQL: every row in one `unnest` statement; SQLite: `VALUES` of 100 rows.
    let size = if postgres { senders.len().max(1) } else { 100 };
    for chunk in senders.chunks(size) {
        // A row that comes back with the id proposed for it was inserted; an existing contact
        // keeps its own.
        let new_ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let source = if postgres {
            "SELECT u.id, $1, u.phone, u.wa_id, NULL, u.name, $2, $2
             FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[]) AS u(id, phone, wa_id, name)"
                .to_owned()
        } else {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 4 + 3;
                    format!(
                        "(${}, $1, ${}, ${}, NULL, ${}, $2, $2)",
                        b,
                        b + 1,
                        b + 2,
                        b + 3
                    )
                })
                .collect();
            format!("VALUES {}", rows.join(", "))
        };
        let mut q = Query::new(format!(
            "INSERT INTO contacts (id, tenant_id, phone, wa_id, name, wa_profile_name, created_at, updated_at)
             {source}
             ON CONFLICT (tenant_id, phone) DO UPDATE SET
                 wa_profile_name = COALESCE(excluded.wa_profile_name, contacts.wa_profile_name),
                 wa_id = COALESCE(contacts.wa_id, excluded.wa_id),
                 updated_at = CASE WHEN contacts.wa_id IS NULL
                                     OR (excluded.wa_profile_name IS NOT NULL
                                         AND (contacts.wa_profile_name IS NULL
                                              OR contacts.wa_profile_name <> excluded.wa_profile_name))
                                   THEN excluded.updated_at ELSE contacts.updated_at END
             RETURNING id, phone"
        ))
        .bind(tenant)
        .bind(now);
        if postgres {
            q = q
                .bind(new_ids.clone())
                .bind(
                    chunk
                        .iter()
                        .map(|c| Some(c.phone.clone()))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    chunk
                        .iter()
                        .map(|c| Some(c.wa_id.clone()))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    chunk
                        .iter()
                        .map(|c| c.profile_name.clone())
                        .collect::<Vec<_>>(),
                );
        } else {
            for (c, id) in chunk.iter().zip(&new_ids) {
                q = q
                    .bind(*id)
                    .bind(c.phone.as_str())
                    .bind(c.wa_id.as_str())
                    .bind(c.profile_name.as_deref());
            }
        }
        let fresh: HashSet<&Uuid> = new_ids.iter().collect();
        for r in tx.fetch_all::<Row>(q).await? {
            if fresh.contains(&r.id) {
                created.push(r.id);
            }
            ids.insert(r.phone, r.id);
        }
    }
    Ok(UpsertedContacts { ids, created })
}

/// What [`upsert_contacts`] did.
#[derive(Debug, Default)]
pub struct UpsertedContacts {
    /// Phone → contact id, for every sender.
    pub ids: HashMap<String, Uuid>,
    /// The contacts it created.
    pub created: Vec<Uuid>,
}

/// Each contact's unresolved conversation on this number, opened if there is none, and moved to
/// `open` with its `at` as the latest (inbound) message time (never moved back in time). One
/// multi-row upsert on the partial unique index of unresolved conversations per 100 contacts:
/// no lookup that a planner could get wrong on a table it has no statistics for yet. Rows are
/// written in contact order, so concurrent processors lock them in one order. Returns contact
/// id → conversation id.
pub async fn touch_conversations(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: Uuid,
    latest: &HashMap<Uuid, OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<HashMap<Uuid, Uuid>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        contact_id: Uuid,
    }
    let mut contacts: Vec<(Uuid, OffsetDateTime)> = latest.iter().map(|(c, t)| (*c, *t)).collect();
    contacts.sort_unstable();
    let mut ids = HashMap::with_capacity(contacts.len());
    let postgres = tx.backend() == Backend::Postgres;
    // PostgreSQL: every row in one `unnest` statement; SQLite: `VALUES` of 100 rows.
    let size = if postgres { contacts.len().max(1) } else { 100 };
    for chunk in contacts.chunks(size) {
        let source = if postgres {
            "SELECT u.id, $1, u.contact_id, $2, 'open', u.at, u.at, $3, $3
             FROM unnest($4::uuid[], $5::uuid[], $6::timestamptz[]) AS u(id, contact_id, at)"
                .to_owned()
        } else {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 3 + 4;
                    format!(
                        "(${}, $1, ${}, $2, 'open', ${}, ${}, $3, $3)",
                        b,
                        b + 1,
                        b + 2,
                        b + 2
                    )
                })
                .collect();
            format!("VALUES {}", rows.join(", "))
        };
        let mut q = Query::new(format!(
            "INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
                 last_message_at, last_inbound_at, created_at, updated_at)
             {source}
             ON CONFLICT (tenant_id, contact_id, connection_id) WHERE status <> 'resolved'
             DO UPDATE SET status = 'open', updated_at = excluded.updated_at,
                 last_message_at = CASE WHEN conversations.last_message_at < excluded.last_message_at
                                        THEN excluded.last_message_at
                                        ELSE conversations.last_message_at END,
                 last_inbound_at = CASE WHEN conversations.last_inbound_at IS NULL
                                          OR conversations.last_inbound_at < excluded.last_inbound_at
                                        THEN excluded.last_inbound_at
                                        ELSE conversations.last_inbound_at END
             RETURNING id, contact_id"
        ))
        .bind(tenant)
        .bind(connection_id)
        .bind(now);
        if postgres {
            q = q
                .bind(chunk.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(c, _)| *c).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, at)| Some(*at)).collect::<Vec<_>>());
        } else {
            for (contact, at) in chunk {
                q = q.bind(Uuid::now_v7()).bind(*contact).bind(*at);
            }
        }
        for r in tx.fetch_all::<Row>(q).await? {
            ids.insert(r.contact_id, r.id);
        }
    }
    Ok(ids)
}

/// Which of `wamids` this connection already has.
pub async fn existing_wamids(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: Uuid,
    wamids: &[String],
) -> Result<HashSet<String>> {
    #[derive(sqlx::FromRow)]
    struct W {
        wamid: String,
    }
    let mut found = HashSet::new();
    let db = tx.backend();
    for chunk in member_chunks(db, wamids) {
        let q = Query::new(format!(
            "SELECT wamid FROM messages WHERE {} AND connection_id = $2 AND {}",
            tenant_is(db, "tenant_id", 1),
            member_of(db, "wamid", 3, chunk.len())
        ))
        .bind(tenant)
        .bind(connection_id)
        .bind_members(db, chunk);
        let rows: Vec<W> = tx.fetch_all(q).await?;
        found.extend(rows.into_iter().map(|r| r.wamid));
    }
    Ok(found)
}

/// A message to insert (see [`insert_messages`]).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub conversation_id: Uuid,
    pub connection_id: Uuid,
    pub wamid: String,
    pub direction: &'static str,
    pub kind: String,
    pub body: serde_json::Value,
    pub text: Option<String>,
    pub status: &'static str,
    pub error: Option<serde_json::Value>,
    pub context_wamid: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, tenant_id, conversation_id, connection_id, wamid, direction, \
    type, body, text, status, error, context_wamid, sent_at, created_at, status_updated_at";

/// Inserts messages; a wamid the connection already has is skipped (redelivered webhooks). The
/// conflict target names the wamid index: without one, every unique index of the table is
/// probed for each row before it is inserted. PostgreSQL gets every row in one `unnest`
/// statement (one statement text for any count); SQLite multi-row `VALUES` of at most 25 rows.
/// Returns the rows inserted, as stored: what a read would return (`media` is not filled), so
/// that events need not read them again.
pub async fn insert_messages(
    tx: &mut Tx<SystemScope>,
    list: &[NewMessage],
) -> Result<Vec<Message>> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    if tx.backend() == Backend::Postgres {
        let text = |f: &dyn Fn(&NewMessage) -> Option<String>| -> Vec<Option<String>> {
            list.iter().map(f).collect()
        };
        let q = Query::new(format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS})
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                 $6::text[], $7::text[], $8::text[]::jsonb[], $9::text[], $10::text[],
                 $11::text[]::jsonb[], $12::text[], $13::timestamptz[], $14::timestamptz[],
                 $15::timestamptz[])
             ON CONFLICT (wamid, connection_id, tenant_id) DO NOTHING
             RETURNING {MESSAGE_COLUMNS}, author_id"
        ))
        .bind(list.iter().map(|m| m.id).collect::<Vec<_>>())
        .bind(
            list.iter()
                .map(|m| m.tenant_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(list.iter().map(|m| m.conversation_id).collect::<Vec<_>>())
        .bind(list.iter().map(|m| m.connection_id).collect::<Vec<_>>())
        .bind(text(&|m| Some(m.wamid.clone())))
        .bind(text(&|m| Some(m.direction.to_owned())))
        .bind(text(&|m| Some(m.kind.clone())))
        .bind(text(&|m| Some(m.body.to_string())))
        .bind(text(&|m| m.text.clone()))
        .bind(text(&|m| Some(m.status.to_owned())))
        .bind(text(&|m| m.error.as_ref().map(ToString::to_string)))
        .bind(text(&|m| m.context_wamid.clone()))
        .bind(list.iter().map(|m| m.sent_at).collect::<Vec<_>>())
        .bind(list.iter().map(|m| Some(m.created_at)).collect::<Vec<_>>())
        .bind(list.iter().map(|m| Some(m.created_at)).collect::<Vec<_>>());
        return tx.fetch_all(q).await;
    }
    // SQLite: small statements. sqlx asks SQLite for each parameter's name when binding, and
    // SQLite finds it by a linear walk, so binding is quadratic in the parameter count: at 200
    // rows (3,000 parameters) a quarter of the server's time went to that lookup.
    let mut stored = Vec::with_capacity(list.len());
    for chunk in list.chunks(25) {
        let mut rows = Vec::with_capacity(chunk.len());
        for i in 0..chunk.len() {
            rows.push(format!("({})", placeholders(i * 15 + 1, 15)));
        }
        let mut q = Query::new(format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {}
             ON CONFLICT (wamid, connection_id, tenant_id) DO NOTHING
             RETURNING {MESSAGE_COLUMNS}, author_id",
            rows.join(", ")
        ));
        for m in chunk {
            q = q
                .bind(m.id)
                .bind(m.tenant_id)
                .bind(m.conversation_id)
                .bind(m.connection_id)
                .bind(m.wamid.as_str())
                .bind(m.direction)
                .bind(m.kind.as_str())
                .bind(m.body.clone())
                .bind(m.text.clone())
                .bind(m.status)
                .bind(m.error.clone())
                .bind(m.context_wamid.clone())
                .bind(m.sent_at)
                .bind(m.created_at)
                .bind(m.created_at);
        }
        stored.extend(tx.fetch_all::<Message>(q).await?);
    }
    Ok(stored)
}

/// The order statuses move in; a message only moves to a higher rank. `failed` ranks with
/// `read`: neither replaces the other.
const RANK: &str =
    "CASE status WHEN 'received' THEN 0 WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 ELSE 3 END";

pub fn status_rank(status: &str) -> Option<i64> {
    match status {
        "sent" => Some(1),
        "delivered" => Some(2),
        "read" | "failed" => Some(3),
        _ => None,
    }
}

/// Moves a message's status forward (never backward). Returns whether the message changed.
pub async fn advance_status(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: Uuid,
    wamid: &str,
    status: &str,
    error: Option<serde_json::Value>,
    now: OffsetDateTime,
) -> Result<bool> {
    let Some(rank) = status_rank(status) else {
        return Ok(false);
    };
    Ok(tx
        .execute(
            Query::new(format!(
                "UPDATE messages SET status = $4, error = COALESCE($5, error), status_updated_at = $6
                 WHERE tenant_id = $1 AND connection_id = $2 AND wamid = $3 AND ({RANK}) < $7"
            ))
            .bind(tenant)
            .bind(connection_id)
            .bind(wamid)
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(rank),
        )
        .await?
        > 0)
}

// ---- outbound (users and API keys write, the sender sends) ----

/// An outbound message written by a user or an API key (see [`insert_outbound`]).
#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub connection_id: Uuid,
    pub kind: String,
    /// `{type, <type>: {…}}`: the Graph API body without the recipient.
    pub body: serde_json::Value,
    pub text: Option<String>,
    pub author_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Stores an outbound message as `queued` with its row in the send queue (one transaction: the
/// caller's), and moves the conversation's latest message time.
pub async fn insert_outbound(tx: &mut Tx<TenantScope>, m: &NewOutbound) -> Result<()> {
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
            "INSERT INTO whatsapp_outbound_queue (message_id, tenant_id, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(m.id)
        .bind(tenant)
        .bind(m.created_at),
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
    Ok(())
}

pub async fn find_message(tx: &mut Tx<TenantScope>, id: Uuid) -> Result<Option<Message>> {
    let tenant = tx.scope().tenant_id();
    tx.fetch_optional(
        Query::new(format!(
            "SELECT {MESSAGE_COLUMNS}, author_id FROM messages WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await
}

/// A claimed row of the send queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedSend {
    pub message_id: Uuid,
    pub tenant_id: Uuid,
    pub attempts: i64,
}

/// Claims up to `limit` due sends (every active tenant) by moving their `next_attempt_at` to
/// `lease_until`; a sender that dies mid-send only delays them. On PostgreSQL concurrent
/// senders skip each other's rows.
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
    let lock = match tx.backend() {
        crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        crate::Backend::Sqlite => "",
    };
    tx.fetch_all(
        Query::new(format!(
            "UPDATE whatsapp_outbound_queue SET next_attempt_at = $2
             WHERE message_id IN (
                SELECT q.message_id FROM whatsapp_outbound_queue q
                WHERE q.next_attempt_at <= $1
                  AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = q.tenant_id AND t.status = 'active')
                ORDER BY q.next_attempt_at, q.message_id LIMIT $3 {lock})
             RETURNING message_id, tenant_id, attempts"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit),
    )
    .await
}

/// What the sender needs: the message and its recipient (`wa_id`, or the phone's digits).
pub async fn send_job(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: Uuid,
) -> Result<Option<(Message, String)>> {
    #[derive(sqlx::FromRow)]
    struct Recipient {
        phone: String,
        wa_id: Option<String>,
    }
    let m: Option<Message> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {MESSAGE_COLUMNS}, author_id FROM messages WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    let Some(m) = m else { return Ok(None) };
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
    message_id: Uuid,
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
    message_id: Uuid,
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

async fn dequeue(tx: &mut Tx<SystemScope>, tenant: TenantId, message_id: Uuid) -> Result<()> {
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
    message_id: Uuid,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE whatsapp_outbound_queue
             SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4
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

/// Writes a conversation's status, assignee and labels.
pub async fn update_conversation(
    tx: &mut Tx<TenantScope>,
    id: Uuid,
    status: &str,
    assignee_id: Option<Uuid>,
    labels: &[String],
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE conversations SET status = $3, assignee_id = $4, labels = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(status)
        .bind(assignee_id)
        .bind(serde_json::json!(labels))
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Stores an internal note (type `note`, direction `internal`, status `recorded`; never sent).
pub async fn insert_note(
    tx: &mut Tx<TenantScope>,
    id: Uuid,
    conversation_id: Uuid,
    connection_id: Uuid,
    text: &str,
    author_id: Uuid,
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}, author_id)
             VALUES ($1, $2, $3, $4, NULL, 'internal', 'note', $5, $6, 'recorded', NULL, NULL, NULL, $7, $7, $8)"
        ))
        .bind(id)
        .bind(tenant)
        .bind(conversation_id)
        .bind(connection_id)
        .bind(serde_json::json!({ "type": "note", "note": { "body": text } }))
        .bind(text)
        .bind(now)
        .bind(author_id),
    )
    .await?;
    Ok(())
}

// ---- reads (users and API keys) ----

pub(crate) const CONVERSATION_SELECT: &str =
    "SELECT v.id, v.tenant_id, v.contact_id, v.connection_id, v.status, \
    v.last_message_at, v.last_inbound_at, v.created_at, v.updated_at, v.assignee_id, v.labels, \
    c.phone AS contact_phone, COALESCE(c.name, c.wa_profile_name) AS contact_name \
    FROM conversations v JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id";

/// What a conversation list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// `open`, `pending` or `resolved`.
    pub status: Option<String>,
    /// Only conversations assigned to this user.
    pub assignee: Option<Uuid>,
    /// Only conversations assigned to nobody.
    pub unassigned: bool,
    /// Only conversations with this label (exact).
    pub label: Option<String>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<Uuid>,
    pub limit: i64,
}

/// Conversations matching `f`, newest first.
pub async fn list_conversations(
    tx: &mut Tx<TenantScope>,
    f: &ConversationFilter,
) -> Result<Vec<Conversation>> {
    let tenant = tx.scope().tenant_id();
    let (label_clause, label_arg) =
        crate::query::json_array_has(tx.backend(), "v.labels", 6, f.label.as_deref());
    let mut q = Query::new(format!(
        "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND ($2 IS NULL OR v.status = $2)
         AND ($3 IS NULL OR v.id < $3) AND ($4 IS NULL OR v.assignee_id = $4)
         AND ($5 = FALSE OR v.assignee_id IS NULL) AND {label_clause}
         ORDER BY v.id DESC LIMIT $7"
    ))
    .bind(tenant)
    .bind(f.status.as_deref())
    .bind(f.before_id)
    .bind(f.assignee)
    .bind(f.unassigned);
    q.args.push(label_arg);
    tx.fetch_all(q.bind(f.limit)).await
}

pub async fn find_conversation(tx: &mut Tx<TenantScope>, id: Uuid) -> Result<Option<Conversation>> {
    let tenant = tx.scope().tenant_id();
    tx.fetch_optional(
        Query::new(format!(
            "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND v.id = $2"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await
}

/// [`find_conversation`], locking the conversation's row (not its contact's) until the
/// transaction ends, for a read-modify-write ([`update_conversation`] writes status, assignee and
/// labels together): on PostgreSQL a status change would otherwise undo a concurrent label
/// change it had not seen. On SQLite write transactions already run one at a time.
pub async fn find_conversation_for_update(
    tx: &mut Tx<TenantScope>,
    id: Uuid,
) -> Result<Option<Conversation>> {
    let tenant = tx.scope().tenant_id();
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE OF v",
        Backend::Sqlite => "",
    };
    tx.fetch_optional(
        Query::new(format!(
            "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND v.id = $2 {lock}"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await
}

/// A conversation's messages, oldest first; `cursor` is the last id of the previous page.
pub async fn list_messages(
    tx: &mut Tx<TenantScope>,
    conversation_id: Uuid,
    cursor: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Message>> {
    let tenant = tx.scope().tenant_id();
    tx.fetch_all(
        Query::new(format!(
            "SELECT {MESSAGE_COLUMNS}, author_id FROM messages
             WHERE tenant_id = $1 AND conversation_id = $2 AND ($3 IS NULL OR id > $3)
             ORDER BY id LIMIT $4"
        ))
        .bind(tenant)
        .bind(conversation_id)
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// Whether any conversation uses this connection (a connection with history cannot be deleted).
pub async fn connection_has_conversations(
    tx: &mut Tx<TenantScope>,
    connection_id: Uuid,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .fetch_optional::<IdRow>(
            Query::new(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND connection_id = $2 LIMIT 1",
            )
            .bind(tenant)
            .bind(connection_id),
        )
        .await?
        .map(|r| r.id)
        .is_some())
}
