//! The files of queued media messages sent from an attachment: written with the message (the
//! sender's transaction is the caller's), read by the sender, which records Meta's media id
//! once it uploaded the file so a retry does not upload it again.

use crate::{Query, Result, SystemScope, TenantScope, Tx};
use palisade_domain::{AttachmentId, MessageId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A message's file: what was checked when it was queued, and Meta's media id once uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMedia {
    pub message_id: MessageId,
    pub tenant_id: TenantId,
    pub attachment_id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256: the file's name in the tenant's storage.
    pub sha256: String,
    pub media_id: Option<String>,
    pub uploaded_at: Option<OffsetDateTime>,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    message_id: Uuid,
    tenant_id: Uuid,
    attachment_id: Uuid,
    filename: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    media_id: Option<String>,
    uploaded_at: Option<OffsetDateTime>,
}

impl From<Row> for OutboundMedia {
    fn from(r: Row) -> Self {
        OutboundMedia {
            message_id: r.message_id.into(),
            tenant_id: r.tenant_id.into(),
            attachment_id: r.attachment_id.into(),
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            media_id: r.media_id,
            uploaded_at: r.uploaded_at,
        }
    }
}

const COLUMNS: &str = "message_id, tenant_id, attachment_id, filename, content_type, size_bytes, \
     sha256, media_id, uploaded_at";

/// Records the file of a message just queued (in the message's transaction).
pub async fn insert(tx: &mut Tx<TenantScope>, m: &OutboundMedia) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO outbound_media ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)"
        ))
        .bind(m.message_id)
        .bind(tenant)
        .bind(m.attachment_id)
        .bind(m.filename.clone())
        .bind(m.content_type.clone())
        .bind(m.size_bytes)
        .bind(m.sha256.clone()),
    )
    .await?;
    Ok(())
}

/// The file of a message, for the sender.
pub async fn find_for_send(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
) -> Result<Option<OutboundMedia>> {
    let row: Option<Row> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM outbound_media WHERE tenant_id = $1 AND message_id = $2"
            ))
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    Ok(row.map(OutboundMedia::from))
}

/// Records Meta's media id for the message's file (the sender, after the upload).
pub async fn record_upload(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
    media_id: &str,
    at: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE outbound_media SET media_id = $3, uploaded_at = $4
             WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(tenant)
        .bind(message_id)
        .bind(media_id.to_owned())
        .bind(at),
    )
    .await?;
    Ok(())
}

/// The files of listed messages (those sent from an attachment).
pub async fn for_messages(
    tx: &mut Tx<TenantScope>,
    message_ids: &[MessageId],
) -> Result<Vec<OutboundMedia>> {
    let tenant = tx.scope().tenant_id();
    let message_ids: Vec<Uuid> = message_ids.iter().map(MessageId::as_uuid).collect();
    let mut out = Vec::new();
    let db = tx.backend();
    for chunk in crate::query::member_chunks(db, &message_ids) {
        let q = Query::new(format!(
            "SELECT {COLUMNS} FROM outbound_media WHERE {} AND {}",
            crate::query::tenant_is(db, "tenant_id", 1),
            crate::query::member_of(db, "message_id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        for r in tx.fetch_all::<Row>(q).await? {
            out.push(OutboundMedia::from(r));
        }
    }
    Ok(out)
}
