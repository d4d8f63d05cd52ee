//! Inbound media: one row per media message in `message_media`, which is both the durable
//! download job and the state of the stored file (`pending` → `stored` | `failed`).
//!
//! Jobs are inserted by the processing of Meta's webhooks (system work, the connection's tenant
//! bound into every statement) and claimed by the media worker under a `SystemScope` like the
//! other queues: one `UPDATE` of the rows a `SELECT … FOR UPDATE SKIP LOCKED` picked, on
//! PostgreSQL (SQLite's single writer serialises claims) that moves `next_attempt_at` ahead as a
//! lease, so a worker that dies mid-download only delays the job. Users read the state under
//! their [`TenantScope`].

use crate::{Query, Result, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{ConnectionId, ContactId, MediaStatus, MessageId, MessageKind, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A media message's file: the job and, once downloaded, where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageMedia {
    pub message_id: MessageId,
    pub tenant_id: TenantId,
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: MessageKind,
    /// Meta's media id.
    pub media_id: String,
    pub mime_type: Option<String>,
    /// The SHA-256 Meta gave in the webhook, as written there (base64 or hex).
    pub sha256: Option<String>,
    /// A document's file name, as the sender gave it (never used as a storage name).
    pub filename: Option<String>,
    pub status: MediaStatus,
    pub size_bytes: Option<i64>,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub content_sha256: Option<String>,
    /// The server-generated key of the file in the tenant's storage.
    pub storage_key: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct MediaRow {
    message_id: Uuid,
    tenant_id: Uuid,
    kind: String,
    media_id: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    filename: Option<String>,
    status: String,
    size_bytes: Option<i64>,
    content_sha256: Option<String>,
    storage_key: Option<String>,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    error_code: Option<String>,
    error: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<MediaRow> for MessageMedia {
    type Error = StoreError;
    fn try_from(r: MediaRow) -> Result<Self> {
        Ok(MessageMedia {
            message_id: r.message_id.into(),
            tenant_id: r.tenant_id.into(),
            kind: MessageKind::parse(&r.kind),
            media_id: r.media_id,
            mime_type: r.mime_type,
            sha256: r.sha256,
            filename: r.filename,
            status: StoreError::parse_stored(&r.status)?,
            size_bytes: r.size_bytes,
            content_sha256: r.content_sha256,
            storage_key: r.storage_key,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            error_code: r.error_code,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "message_id, tenant_id, kind, media_id, mime_type, sha256, filename, \
    status, size_bytes, content_sha256, storage_key, attempts, next_attempt_at, error_code, \
    error, created_at, updated_at";

/// A job to insert with its message (see [`enqueue`]).
#[derive(Debug, Clone)]
pub struct NewMediaJob {
    pub message_id: MessageId,
    pub tenant_id: TenantId,
    pub kind: MessageKind,
    pub media_id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub filename: Option<String>,
    /// `Pending`, or `Failed` when the webhook's media object is unusable.
    pub status: MediaStatus,
    pub error_code: Option<&'static str>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Inserts download jobs in multi-row statements (due at once). A message that already has one
/// keeps it.
pub async fn enqueue(tx: &mut Tx<SystemScope>, jobs: &[NewMediaJob]) -> Result<u64> {
    const N: usize = 14;
    let mut n = 0;
    for chunk in jobs.chunks(50) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=N).map(|k| format!("${}", i * N + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let mut q = Query::new(format!(
            "INSERT INTO message_media (message_id, tenant_id, kind, media_id, mime_type, sha256,
                 filename, status, error_code, error, attempts, next_attempt_at, created_at, updated_at)
             VALUES {} ON CONFLICT DO NOTHING",
            rows.join(", ")
        ));
        for j in chunk {
            q = q
                .bind(j.message_id)
                .bind(j.tenant_id)
                .bind(j.kind.as_str())
                .bind(j.media_id.as_str())
                .bind(j.mime_type.clone())
                .bind(j.sha256.clone())
                .bind(j.filename.clone())
                .bind(j.status.as_str())
                .bind(j.error_code)
                .bind(j.error.clone())
                .bind(0_i64)
                .bind(j.created_at)
                .bind(j.created_at)
                .bind(j.created_at);
        }
        n += tx.execute(q).await?;
    }
    Ok(n)
}

/// A claimed job.
pub type ClaimedJob = crate::lease::Claimed;

/// Claims up to `limit` pending jobs due at `now` (every active tenant) by moving their
/// `next_attempt_at` to `lease_until`; see [`crate::lease`]. A suspended tenant's jobs wait
/// untouched (no attempt counted) until it is reactivated.
pub async fn claim_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ClaimedJob>> {
    crate::lease::claim_due(
        tx,
        "message_media",
        Some("status = 'pending'"),
        None,
        now,
        lease_until,
        limit,
    )
    .await
}

/// What the worker needs for a job: the row and the connection its message came through.
pub async fn job(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
) -> Result<Option<(MessageMedia, ConnectionId)>> {
    #[derive(sqlx::FromRow)]
    struct Conn {
        connection_id: Uuid,
    }
    let m: Option<MediaRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM message_media WHERE tenant_id = $1 AND message_id = $2"
            ))
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    let Some(m) = m else { return Ok(None) };
    let m = MessageMedia::try_from(m)?;
    let c: Conn = tx
        .fetch_one(
            Query::new("SELECT connection_id FROM messages WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(message_id),
        )
        .await?;
    Ok(Some((m, c.connection_id.into())))
}

/// What a successful download stored.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub mime_type: Option<String>,
    pub size_bytes: i64,
    pub content_sha256: String,
    pub storage_key: String,
}

/// The file is in the tenant's storage: records it on the job, if the job is still there and
/// still `pending`. Returns `false` when it is not (the message was erased meanwhile, or
/// another worker recorded its own download): then nothing refers to the file and the caller
/// must remove it.
///
/// On PostgreSQL this `UPDATE` and an erasure's `DELETE … RETURNING` ([`delete_of_contact`])
/// lock the same row, so whichever comes second sees the other's outcome: the erasure
/// returns the key this recorded, or this finds no row.
pub async fn mark_stored(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    f: &StoredFile,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE message_media SET status = 'stored', mime_type = COALESCE($3, mime_type),
                 size_bytes = $4, content_sha256 = $5, storage_key = $6, attempts = attempts + 1,
                 error_code = NULL, error = NULL, updated_at = $7
             WHERE tenant_id = $1 AND message_id = $2 AND status = 'pending'",
            )
            .bind(tenant)
            .bind(message_id)
            .bind(f.mime_type.clone())
            .bind(f.size_bytes)
            .bind(f.content_sha256.as_str())
            .bind(f.storage_key.as_str())
            .bind(now),
        )
        .await?;
    Ok(n > 0)
}

/// The download is given up, with a stable code and a readable reason.
pub async fn mark_failed(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    code: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE message_media SET status = 'failed', attempts = attempts + 1,
                 error_code = $3, error = $4, updated_at = $5
             WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(code)
        .bind(reason)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// A transient failure: counts the attempt and schedules the next one.
pub async fn retry(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    next_attempt_at: OffsetDateTime,
    code: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE message_media SET attempts = attempts + 1, next_attempt_at = $3,
                 error_code = $4, error = $5, updated_at = $6
             WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(next_attempt_at)
        .bind(code)
        .bind(reason)
        .bind(now),
    )
    .await?;
    Ok(())
}

// ---- reads (users and API keys) ----

/// The media of one message of the scope's tenant.
pub async fn find(tx: &mut Tx<TenantScope>, message_id: MessageId) -> Result<Option<MessageMedia>> {
    let tenant = tx.scope().tenant_id();
    tx.fetch_optional::<MediaRow>(
        Query::new(format!(
            "SELECT {COLUMNS} FROM message_media WHERE tenant_id = $1 AND message_id = $2"
        ))
        .bind(tenant)
        .bind(message_id),
    )
    .await?
    .map(MessageMedia::try_from)
    .transpose()
}

/// The media of several messages of the scope's tenant (those that have any).
pub async fn for_messages(
    tx: &mut Tx<TenantScope>,
    message_ids: &[MessageId],
) -> Result<Vec<MessageMedia>> {
    let tenant = tx.scope().tenant_id();
    for_messages_of(tx, tenant, message_ids).await
}

/// [`for_messages`] for any scope (system work such as realtime events), with the tenant bound.
pub async fn for_messages_of<S: crate::Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    message_ids: &[MessageId],
) -> Result<Vec<MessageMedia>> {
    let message_ids: Vec<Uuid> = message_ids.iter().map(MessageId::as_uuid).collect();
    let mut out = Vec::new();
    let db = tx.backend();
    for chunk in crate::query::member_chunks(db, &message_ids) {
        let q = Query::new(format!(
            "SELECT {COLUMNS} FROM message_media WHERE {} AND {}",
            crate::query::tenant_is(db, "tenant_id", 1),
            crate::query::member_of(db, "message_id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        for r in tx.fetch_all::<MediaRow>(q).await? {
            out.push(MessageMedia::try_from(r)?);
        }
    }
    Ok(out)
}

/// Deletes the media rows of a contact's messages (in the erasure's transaction, before the
/// messages) and returns the storage keys of their files, to be removed once it commits.
///
/// A `DELETE … RETURNING` rather than a read: on PostgreSQL a download being recorded at the
/// same moment holds the row, this waits for it and then returns the key it recorded, so no
/// stored file escapes the erasure (see [`mark_stored`] for the other order).
pub async fn delete_of_contact(
    tx: &mut Tx<TenantScope>,
    contact_id: ContactId,
) -> Result<Vec<String>> {
    #[derive(sqlx::FromRow)]
    struct Key {
        storage_key: Option<String>,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Key> = tx
        .fetch_all(
            Query::new(
                "DELETE FROM message_media WHERE tenant_id = $1 AND message_id IN (
                    SELECT m.id FROM messages m
                    JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id
                    WHERE m.tenant_id = $1 AND c.contact_id = $2)
                 RETURNING storage_key",
            )
            .bind(tenant)
            .bind(contact_id),
        )
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.storage_key).collect())
}
