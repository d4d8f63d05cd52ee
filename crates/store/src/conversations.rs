//! Conversations: the thread between a contact and one WhatsApp connection. Inbound processing
//! opens and touches them (system work for the connection's tenant, bound into every
//! statement); users and API keys list, read and update them under their [`TenantScope`].
//!
//! Separate from `messages` and `send_queue` so that each file holds one table's statements:
//! a conversation's messages are in `messages`, its outgoing sends in `send_queue`.

use crate::query::{member_chunks, member_of};
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

/// A row of [`CONVERSATION_SELECT`]: the conversation's own columns and its contact's.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ConversationRow {
    #[sqlx(flatten)]
    own: OwnRow,
    contact_phone: String,
    contact_name: Option<String>,
}

/// A conversation's own columns ([`OWN_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
struct OwnRow {
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
}

/// The columns of [`OwnRow`], as a statement on `conversations` alone returns them.
const OWN_COLUMNS: &str = "id, tenant_id, contact_id, connection_id, status, last_message_at, \
     last_inbound_at, created_at, updated_at, assignee_id, labels";

impl OwnRow {
    fn with_contact(
        self,
        contact_phone: String,
        contact_name: Option<String>,
    ) -> Result<Conversation> {
        Ok(Conversation {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            contact_id: self.contact_id.into(),
            connection_id: self.connection_id.into(),
            status: StoreError::parse_stored(&self.status)?,
            last_message_at: self.last_message_at,
            last_inbound_at: self.last_inbound_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            assignee_id: self.assignee_id.map(UserId::from),
            labels: self.labels.0,
            contact_phone,
            contact_name,
        })
    }
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;
    fn try_from(r: ConversationRow) -> Result<Self> {
        r.own.with_contact(r.contact_phone, r.contact_name)
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
/// written in contact order, so concurrent processors lock them in one order. A conversation
/// opened here starts with `first_inbound_at` at `now`, the creation time the caller gives the
/// batch's messages (what the first inbound message's time is): the analytics trigger on `messages`
/// (migration 0031) then has nothing to write unless the batch holds an earlier message of the
/// contact, where a second write of the new row (a new version in each of its indexes on
/// PostgreSQL) cost ≈ 15 ms a batch under the ingest benchmark. Returns each contact's
/// conversation as the upsert left it (its realtime event needs no second read; see
/// [`Touched`]); only those with labels have their rows in `conversation_labels` moved.
pub async fn touch_conversations(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: ConnectionId,
    latest: &HashMap<ContactId, OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<HashMap<ContactId, Touched>> {
    let mut contacts: Vec<(ContactId, OffsetDateTime)> =
        latest.iter().map(|(c, t)| (*c, *t)).collect();
    contacts.sort_unstable();
    let mut ids = HashMap::with_capacity(contacts.len());
    let postgres = tx.backend() == Backend::Postgres;
    // PostgreSQL: every row in one `unnest` statement; SQLite: `VALUES` of 100 rows.
    let size = if postgres { contacts.len().max(1) } else { 100 };
    for chunk in contacts.chunks(size) {
        let source = if postgres {
            "SELECT u.id, $1, u.contact_id, $2, 'open', u.at, u.at, $3, $3, $3
             FROM unnest($4::uuid[], $5::uuid[], $6::timestamptz[]) AS u(id, contact_id, at)"
                .to_owned()
        } else {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 3 + 4;
                    format!(
                        "(${}, $1, ${}, $2, 'open', ${}, ${}, $3, $3, $3)",
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
                 last_message_at, last_inbound_at, first_inbound_at, created_at, updated_at)
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
             RETURNING {OWN_COLUMNS}"
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
        for r in tx.fetch_all::<OwnRow>(q).await? {
            let c = Touched::try_from(r)?;
            ids.insert(c.0.contact_id, c);
        }
    }
    // Conversations without labels have no rows there.
    let labelled: Vec<Uuid> = ids
        .values()
        .filter(|c| !c.0.labels.is_empty())
        .map(|c| c.0.id.as_uuid())
        .collect();
    sync_label_activity(tx, tenant, &labelled).await?;
    Ok(ids)
}

/// A conversation as [`touch_conversations`] left it, but for its contact's phone and name,
/// which the caller has (it wrote the contact in the same transaction):
/// [`Touched::with_contact`] completes it.
#[derive(Debug, Clone)]
pub struct Touched(Conversation);

impl Touched {
    pub fn id(&self) -> ConversationId {
        self.0.id
    }

    /// The conversation, with its contact's phone and name (its own, else its WhatsApp profile
    /// name), as a read would show them.
    pub fn with_contact(self, phone: String, name: Option<String>) -> Conversation {
        Conversation {
            contact_phone: phone,
            contact_name: name,
            ..self.0
        }
    }
}

impl TryFrom<OwnRow> for Touched {
    type Error = StoreError;
    fn try_from(r: OwnRow) -> Result<Self> {
        // Completed by `with_contact`: nothing reads these two before.
        r.with_contact(String::new(), None).map(Touched)
    }
}

/// The unresolved conversation of `contact` on `connection`, opened now (status `open`, no
/// inbound message yet) when there is none: for a message Palisade starts (an order
/// notification), which Meta allows only as a template.
pub async fn open_for_outbound(
    tx: &mut Tx<TenantScope>,
    contact: ContactId,
    connection: ConnectionId,
    now: OffsetDateTime,
) -> Result<ConversationId> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
    }
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
                 last_message_at, last_inbound_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'open', $5, NULL, $5, $5)
             ON CONFLICT (tenant_id, contact_id, connection_id) WHERE status <> 'resolved'
             DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(contact)
        .bind(connection)
        .bind(now),
    )
    .await?;
    let row: Row = tx
        .fetch_one(
            Query::new(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2
                 AND connection_id = $3 AND status <> 'resolved'",
            )
            .bind(tenant)
            .bind(contact)
            .bind(connection),
        )
        .await?;
    Ok(row.id.into())
}

/// Copies the conversations' `last_message_at` to their rows in `conversation_labels` (the
/// label filter's index), in the transaction that moved it: every writer of `last_message_at`
/// calls this after its change. Conversations without labels have no rows, so this costs one
/// index probe per conversation: the tenant is an equality (not `tenant_is`) because the only
/// index holding `conversation_id` is the key, which starts with the tenant; written as
/// `tenant_is`, the update read every label row of every tenant for each inbound batch.
pub(crate) async fn sync_label_activity<S: crate::Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    conversation_ids: &[Uuid],
) -> Result<()> {
    let db = tx.backend();
    for chunk in member_chunks(db, conversation_ids) {
        if chunk.is_empty() {
            continue;
        }
        let q = Query::new(format!(
            "UPDATE conversation_labels SET last_message_at = (
                 SELECT v.last_message_at FROM conversations v
                 WHERE v.id = conversation_labels.conversation_id)
             WHERE tenant_id = $1 AND {}",
            member_of(db, "conversation_id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        tx.execute(q).await?;
    }
    Ok(())
}

/// Writes a conversation's status, assignee and labels; `resolved_at` (analytics) becomes `now`
/// when it is resolved, stays while it remains resolved and is cleared when it is reopened.
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
            "UPDATE conversations SET status = $3, assignee_id = $4, labels = $5, updated_at = $6,
                 resolved_at = CASE WHEN $3 <> 'resolved' THEN NULL
                                    WHEN status = 'resolved' THEN resolved_at
                                    ELSE $6 END
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
    // The label filter's index: rewritten with the labels, from the conversation's own row (its
    // tenant and activity), in this transaction.
    tx.execute(
        Query::new("DELETE FROM conversation_labels WHERE tenant_id = $1 AND conversation_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    for label in labels {
        tx.execute(
            Query::new(
                "INSERT INTO conversation_labels (tenant_id, conversation_id, label, last_message_at)
                 SELECT tenant_id, id, $3, last_message_at FROM conversations
                 WHERE tenant_id = $1 AND id = $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(id)
            .bind(label.as_str()),
        )
        .await?;
    }
    Ok(())
}

// ---- reads (users and API keys) ----

macro_rules! conversation_columns {
    () => {
        "SELECT v.id, v.tenant_id, v.contact_id, v.connection_id, v.status, \
        v.last_message_at, v.last_inbound_at, v.created_at, v.updated_at, v.assignee_id, v.labels, \
        c.phone AS contact_phone, COALESCE(c.name, c.wa_profile_name) AS contact_name"
    };
}

const CONVERSATION_COLUMNS: &str = conversation_columns!();

pub(crate) const CONVERSATION_SELECT: &str = concat!(
    conversation_columns!(),
    " FROM conversations v JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id"
);

/// A conversation's place in the list: its last activity, then its id (both descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityKey {
    pub last_message_at: OffsetDateTime,
    pub id: ConversationId,
}

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
    /// Only conversations after this one in the list (the last of the previous page).
    pub after: Option<ActivityKey>,
    pub limit: i64,
}

/// Conversations matching `f`, by last activity (`last_message_at`), newest first, ties by id
/// (newest first), after `f.after`. The statement names only the filters given, so that each
/// is an index condition: the status, assignee and label filters each have an index in this
/// order (migration 0021; a label through `conversation_labels`), and the cursor is a row-value
/// comparison both databases answer from the index, so every page (first or deep) reads about
/// `limit` rows. With several filters, the label's index leads (then the status's, then the
/// assignee's) and the others are checked on the rows it yields.
pub async fn list_conversations(
    tx: &mut Tx<TenantScope>,
    f: &ConversationFilter,
) -> Result<Vec<Conversation>> {
    let tenant = tx.scope().tenant_id();
    // The columns the order and the cursor are read from: the label rows' copy when a label
    // leads (they are equal to the conversation's, kept so by every writer).
    let (from, at, id) = if f.label.is_some() {
        (
            "FROM conversation_labels l \
             JOIN conversations v ON v.id = l.conversation_id \
             JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id \
             WHERE l.tenant_id = $1",
            "l.last_message_at",
            "l.conversation_id",
        )
    } else {
        (
            "FROM conversations v \
             JOIN contacts c ON c.tenant_id = v.tenant_id AND c.id = v.contact_id \
             WHERE v.tenant_id = $1",
            "v.last_message_at",
            "v.id",
        )
    };
    let mut q = Query::new(String::new()).bind(tenant);
    let mut terms = String::new();
    // Each term's parameter is the next one after those bound so far.
    let next = |q: &Query| format!("${}", q.args.len() + 1);
    if let Some(label) = &f.label {
        terms.push_str(&format!(" AND l.label = {}", next(&q)));
        q = q.bind(label.as_str());
    }
    if let Some(status) = &f.status {
        terms.push_str(&format!(" AND v.status = {}", next(&q)));
        q = q.bind(status.as_str());
    }
    if let Some(assignee) = f.assignee {
        terms.push_str(&format!(" AND v.assignee_id = {}", next(&q)));
        q = q.bind(assignee);
    }
    if f.unassigned {
        terms.push_str(" AND v.assignee_id IS NULL");
    }
    if let Some(after) = f.after {
        let n = q.args.len();
        terms.push_str(&format!(" AND ({at}, {id}) < (${}, ${})", n + 1, n + 2));
        q = q.bind(after.last_message_at).bind(after.id);
    }
    terms.push_str(&format!(
        " ORDER BY {at} DESC, {id} DESC LIMIT {}",
        next(&q)
    ));
    q = q.bind(f.limit);
    q.sql = format!("{CONVERSATION_COLUMNS} {from}{terms}");
    // PostgreSQL before a table's first ANALYZE (autovacuum's, a minute or more after rows
    // arrive; never where autovacuum is off) takes the tenant term for 0.5% of the rows, and
    // sorting a few rows for cheaper than walking the index in order: it reads the whole tenant
    // (a bitmap scan), joins every row's contact and sorts them to keep `limit`, 400 ms a page
    // at 100,000 conversations instead of 1 ms. Every filter has an index in the list's order,
    // so with sorting priced out the plan is that index, with or without statistics.
    let postgres = matches!(tx.backend(), Backend::Postgres);
    if postgres {
        tx.execute(Query::new("SET LOCAL enable_sort = off"))
            .await?;
    }
    let rows = tx.fetch_all(q).await?;
    if postgres {
        tx.execute(Query::new("SET LOCAL enable_sort = DEFAULT"))
            .await?;
    }
    all(rows)
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

/// One contact's conversations (on every number), newest first, before `before_id`: the
/// contact's page in the console. A contact has one unresolved conversation per number and
/// its resolved ones, so this reads the contact's few rows.
pub async fn list_for_contact(
    tx: &mut Tx<TenantScope>,
    contact_id: ContactId,
    before_id: Option<ConversationId>,
    limit: i64,
) -> Result<Vec<Conversation>> {
    let tenant = tx.scope().tenant_id();
    all(tx
        .fetch_all(
            Query::new(format!(
                "{CONVERSATION_SELECT} WHERE v.tenant_id = $1 AND v.contact_id = $2
             AND ($3 IS NULL OR v.id < $3) ORDER BY v.id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(contact_id)
            .bind(before_id)
            .bind(limit),
        )
        .await?)
}
