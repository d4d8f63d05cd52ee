//! Conversations: the thread between a contact and one WhatsApp connection. Inbound processing
//! opens and touches them (system work for the connection's tenant, bound into every
//! statement); users and API keys list, read and update them under their [`TenantScope`].
//!
//! Separate from `messages` and `send_queue` so that each file holds one table's statements:
//! a conversation's messages are in `messages`, its outgoing sends in `send_queue`.

use crate::{Backend, Query, Result, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{
    ConnectionId, ContactId, ConversationId, ConversationStatus, TenantId, UserId,
};
use sqlx::types::Json;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A conversation, with its contact's phone and name (read with it, for lists).
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub status: ConversationStatus,
    pub last_message_at: OffsetDateTime,
    pub last_inbound_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The user handling it.
    pub assignee_id: Option<UserId>,
    pub labels: Vec<String>,
    pub contact_phone: String,
    pub contact_name: Option<String>,
}

/// A row of [`CONVERSATION_SELECT`].
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ConversationRow {
    id: Uuid,
    tenant_id: Uuid,
    contact_id: Uuid,
    connection_id: Uuid,
    status: String,
    last_message_at: OffsetDateTime,
    last_inbound_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    assignee_id: Option<Uuid>,
    labels: Json<Vec<String>>,
    contact_phone: String,
    contact_name: Option<String>,
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;
    fn try_from(r: ConversationRow) -> Result<Self> {
        Ok(Conversation {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            contact_id: r.contact_id.into(),
            connection_id: r.connection_id.into(),
            status: StoreError::parse_stored(&r.status)?,
            last_message_at: r.last_message_at,
            last_inbound_at: r.last_inbound_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            assignee_id: r.assignee_id.map(UserId::from),
            labels: r.labels.0,
            contact_phone: r.contact_phone,
            contact_name: r.contact_name,
        })
    }
}

pub(crate) fn all(rows: Vec<ConversationRow>) -> Result<Vec<Conversation>> {
    rows.into_iter().map(Conversation::try_from).collect()
}

fn one(row: Option<ConversationRow>) -> Result<Option<Conversation>> {
    row.map(Conversation::try_from).transpose()
}

#[derive(sqlx::FromRow)]
struct IdRow {
    id: Uuid,
}

// ---- writes ----

/// Each contact's unresolved conversation on this number, opened if there is none, and moved to
/// `open` with its `at` as the latest (inbound) message time (never moved back in time). One
/// multi-row upsert on the partial unique index of unresolved conversations per 100 contacts:
/// no lookup that a planner could get wrong on a table it has no statistics for yet. Rows are
/// written in contact order, so concurrent processors lock them in one order. Returns contact
/// id → conversation id.
pub async fn touch_conversations(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: ConnectionId,
    latest: &HashMap<ContactId, OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<HashMap<ContactId, ConversationId>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        contact_id: Uuid,
    }
    let mut contacts: Vec<(ContactId, OffsetDateTime)> =
        latest.iter().map(|(c, t)| (*c, *t)).collect();
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
                .bind(chunk.iter().map(|(c, _)| c.as_uuid()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, at)| Some(*at)).collect::<Vec<_>>());
        } else {
            for (contact, at) in chunk {
                q = q.bind(Uuid::now_v7()).bind(*contact).bind(*at);
            }
        }
        for r in tx.fetch_all::<Row>(q).await? {
            ids.insert(r.contact_id.into(), r.id.into());
        }
    }
    Ok(ids)
}

/// Writes a conversation's status, assignee and labels.
pub async fn update_conversation(
    tx: &mut Tx<TenantScope>,
    id: ConversationId,
    status: ConversationStatus,
    assignee_id: Option<UserId>,
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
        .bind(status.as_str())
        .bind(assignee_id)
        .bind(serde_json::json!(labels))
        .bind(now),
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
    pub status: Option<ConversationStatus>,
    /// Only conversations assigned to this user.
    pub assignee: Option<UserId>,
    /// Only conversations assigned to nobody.
    pub unassigned: bool,
    /// Only conversations with this label (exact).
    pub label: Option<String>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<ConversationId>,
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
    .bind(f.status.map(ConversationStatus::as_str))
    .bind(f.before_id)
    .bind(f.assignee)
    .bind(f.unassigned);
    q.args.push(label_arg);
    all(tx.fetch_all(q.bind(f.limit)).await?)
}

pub async fn find_conversation(
    tx: &mut Tx<TenantScope>,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    let tenant = tx.scope().tenant_id();
    one(tx
        .fetch_optional(
            Query::new(format!(
                "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND v.id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?)
}

/// [`find_conversation`], locking the conversation's row (not its contact's) until the
/// transaction ends, for a read-modify-write ([`update_conversation`] writes status, assignee and
/// labels together): on PostgreSQL a status change would otherwise undo a concurrent label
/// change it had not seen. On SQLite write transactions already run one at a time.
pub async fn find_conversation_for_update(
    tx: &mut Tx<TenantScope>,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    let tenant = tx.scope().tenant_id();
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE OF v",
        Backend::Sqlite => "",
    };
    one(tx
        .fetch_optional(
            Query::new(format!(
                "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND v.id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?)
}

/// Whether any conversation uses this connection (a connection with history cannot be deleted).
pub async fn connection_has_conversations(
    tx: &mut Tx<TenantScope>,
    connection_id: ConnectionId,
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
