//! Tickets, their comments, their attachments (the rows; the files are in `core::storage`) and
//! each user's upload volume per UTC day, read and written under the caller's [`TenantScope`]:
//! every statement binds the scope's tenant.

use crate::{Query, Result, StoreError, TenantScope, Tx};
use palisade_domain::{
    Attachment, AttachmentId, AttachmentOwner, CommentVisibility, ContactId, ConversationId,
    MessageId, Ticket, TicketComment, TicketId, TicketPriority, TicketStatus, TicketSubject,
    UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

fn integrity(what: &str, stored: &str) -> StoreError {
    StoreError::Integrity(format!("unknown {what} {stored:?}"))
}

// ---- tickets ----

#[derive(Debug, sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    tenant_id: Uuid,
    subject: String,
    description: String,
    priority: String,
    status: String,
    assignee_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TicketRow {
    fn into_ticket(self) -> Result<Ticket> {
        Ok(Ticket {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            subject: TicketSubject::from_stored(self.subject),
            description: self.description,
            priority: TicketPriority::parse(&self.priority)
                .ok_or_else(|| integrity("ticket priority", &self.priority))?,
            status: TicketStatus::parse(&self.status)
                .ok_or_else(|| integrity("ticket status", &self.status))?,
            assignee_id: self.assignee_id.map(UserId::from_uuid),
            contact_id: self.contact_id.map(ContactId::from_uuid),
            conversation_id: self.conversation_id.map(ConversationId::from_uuid),
            created_by: self.created_by.map(UserId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const TICKET_COLUMNS: &str = "id, tenant_id, subject, description, priority, status, \
    assignee_id, contact_id, conversation_id, created_by, created_at, updated_at";

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    pub assignee_id: Option<UserId>,
    pub contact_id: Option<ContactId>,
    /// Part of the subject, lower case.
    pub q: Option<String>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<TicketId>,
    pub limit: i64,
}

/// Tickets matching `f`, newest first.
pub async fn list(tx: &mut Tx<TenantScope>, f: &TicketFilter) -> Result<Vec<Ticket>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<TicketRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {TICKET_COLUMNS} FROM tickets
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
                   AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR priority = $4)
                   AND ($5 IS NULL OR assignee_id = $5) AND ($6 IS NULL OR contact_id = $6)
                   AND ($8 IS NULL OR LOWER(subject) LIKE $8 ESCAPE '\\')
                 ORDER BY id DESC LIMIT $7"
            ))
            .bind(tenant)
            .bind(f.before_id)
            .bind(f.status.map(TicketStatus::as_str))
            .bind(f.priority.map(TicketPriority::as_str))
            .bind(f.assignee_id)
            .bind(f.contact_id)
            .bind(f.limit)
            .bind(f.q.as_deref().map(crate::contacts::like_pattern)),
        )
        .await?;
    rows.into_iter().map(TicketRow::into_ticket).collect()
}

async fn find_with(tx: &mut Tx<TenantScope>, id: TicketId, lock: &str) -> Result<Option<Ticket>> {
    let row: Option<TicketRow> = tx.find_row("tickets", TICKET_COLUMNS, id, lock).await?;
    row.map(TicketRow::into_ticket).transpose()
}

pub async fn find(tx: &mut Tx<TenantScope>, id: TicketId) -> Result<Option<Ticket>> {
    find_with(tx, id, "").await
}

/// [`find`], locking the ticket's row until the transaction ends (read-modify-write; on SQLite
/// writers already run one at a time).
pub async fn find_for_update(tx: &mut Tx<TenantScope>, id: TicketId) -> Result<Option<Ticket>> {
    let lock = tx.row_lock();
    find_with(tx, id, lock).await
}

pub async fn insert(tx: &mut Tx<TenantScope>, t: &Ticket) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        // The conversation's connection is copied with it (the key into conversations).
        Query::new(format!(
            "INSERT INTO tickets ({TICKET_COLUMNS}, connection_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                 (SELECT connection_id FROM conversations WHERE tenant_id = $2 AND id = $9))"
        ))
        .bind(t.id)
        .bind(tenant)
        .bind(t.subject.as_str())
        .bind(t.description.clone())
        .bind(t.priority.as_str())
        .bind(t.status.as_str())
        .bind(t.assignee_id)
        .bind(t.contact_id)
        .bind(t.conversation_id)
        .bind(t.created_by)
        .bind(t.created_at)
        .bind(t.updated_at),
    )
    .await?;
    Ok(())
}

/// Writes every editable field of `t`.
pub async fn update(tx: &mut Tx<TenantScope>, t: &Ticket) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE tickets SET subject = $3, description = $4, priority = $5, status = $6,
                 assignee_id = $7, contact_id = $8, conversation_id = $9, updated_at = $10
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(t.id)
        .bind(t.subject.as_str())
        .bind(t.description.clone())
        .bind(t.priority.as_str())
        .bind(t.status.as_str())
        .bind(t.assignee_id)
        .bind(t.contact_id)
        .bind(t.conversation_id)
        .bind(t.updated_at),
    )
    .await?;
    Ok(())
}

/// Deletes tickets chosen by `which` (SQL over `tickets`, `$1` the tenant, `$2` the value) with
/// their comments and attachment rows; returns the SHA-256 of every attachment file no
/// attachment of the tenant refers to any more (the caller removes those files after commit).
async fn delete_where(
    tx: &mut Tx<TenantScope>,
    which: &str,
    value: Uuid,
) -> Result<(u64, Vec<String>)> {
    #[derive(sqlx::FromRow)]
    struct Sha {
        sha256: String,
    }
    let tenant = tx.scope().tenant_id();
    let shas: Vec<Sha> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT DISTINCT sha256 FROM attachments WHERE tenant_id = $1 AND ticket_id IN (
                     SELECT id FROM tickets WHERE tenant_id = $1 AND {which})"
            ))
            .bind(tenant)
            .bind(value),
        )
        .await?;
    for table in ["attachments", "ticket_comments"] {
        tx.execute(
            Query::new(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND ticket_id IN (
                     SELECT id FROM tickets WHERE tenant_id = $1 AND {which})"
            ))
            .bind(tenant)
            .bind(value),
        )
        .await?;
    }
    let n = tx
        .execute(
            Query::new(format!(
                "DELETE FROM tickets WHERE tenant_id = $1 AND {which}"
            ))
            .bind(tenant)
            .bind(value),
        )
        .await?;
    let mut orphans = Vec::new();
    for s in shas {
        if !sha_in_use(tx, &s.sha256).await? {
            orphans.push(s.sha256);
        }
    }
    Ok((n, orphans))
}

/// Deletes a ticket with its comments and attachments; returns the files no longer used.
pub async fn delete(tx: &mut Tx<TenantScope>, id: TicketId) -> Result<Vec<String>> {
    Ok(delete_where(tx, "id = $2", id.as_uuid()).await?.1)
}

/// Deletes the tickets about a contact or opened from one of its conversations (part of
/// erasing the contact); returns how many and the files no longer used.
pub async fn delete_of_contact(
    tx: &mut Tx<TenantScope>,
    contact: ContactId,
) -> Result<(u64, Vec<String>)> {
    let tenant = tx.scope().tenant_id();
    let of_contact = "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2";
    // Its messages are erased next (their files with them); none of them keeps a file alive.
    tx.execute(
        Query::new(format!(
            "DELETE FROM outbound_media WHERE tenant_id = $1 AND message_id IN (
                 SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id IN ({of_contact}))"
        ))
        .bind(tenant)
        .bind(contact),
    )
    .await?;
    let (n, mut orphans) = delete_where(
        tx,
        "(contact_id = $2 OR conversation_id IN (
             SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2))",
        contact.as_uuid(),
    )
    .await?;
    // The files uploaded to its conversations go too.
    #[derive(sqlx::FromRow)]
    struct Sha {
        sha256: String,
    }
    let shas: Vec<Sha> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT DISTINCT sha256 FROM attachments
                 WHERE tenant_id = $1 AND conversation_id IN ({of_contact})"
            ))
            .bind(tenant)
            .bind(contact),
        )
        .await?;
    tx.execute(
        Query::new(format!(
            "DELETE FROM attachments WHERE tenant_id = $1 AND conversation_id IN ({of_contact})"
        ))
        .bind(tenant)
        .bind(contact),
    )
    .await?;
    for s in shas {
        if !orphans.contains(&s.sha256) && !sha_in_use(tx, &s.sha256).await? {
            orphans.push(s.sha256);
        }
    }
    Ok((n, orphans))
}

/// A conversation's attachments, oldest first.
pub async fn conversation_attachments(
    tx: &mut Tx<TenantScope>,
    conversation: ConversationId,
) -> Result<Vec<Attachment>> {
    let rows: Vec<AttachmentRow> = tx
        .rows_of(
            "attachments",
            ATTACHMENT_COLUMNS,
            "conversation_id",
            conversation,
            "id",
        )
        .await?;
    rows.into_iter().map(Attachment::try_from).collect()
}

// ---- comments ----

#[derive(Debug, sqlx::FromRow)]
struct CommentRow {
    id: Uuid,
    ticket_id: Uuid,
    body: String,
    visibility: String,
    author_id: Option<Uuid>,
    message_id: Option<Uuid>,
    created_at: OffsetDateTime,
}

const COMMENT_COLUMNS: &str = "id, ticket_id, body, visibility, author_id, message_id, created_at";

pub async fn insert_comment(tx: &mut Tx<TenantScope>, c: &TicketComment) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO ticket_comments (tenant_id, {COMMENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(tenant)
        .bind(c.id)
        .bind(c.ticket_id)
        .bind(c.body.clone())
        .bind(c.visibility.as_str())
        .bind(c.author_id)
        .bind(c.message_id)
        .bind(c.created_at),
    )
    .await?;
    Ok(())
}

/// A ticket's comments, oldest first.
pub async fn comments(tx: &mut Tx<TenantScope>, ticket: TicketId) -> Result<Vec<TicketComment>> {
    let rows: Vec<CommentRow> = tx
        .rows_of(
            "ticket_comments",
            COMMENT_COLUMNS,
            "ticket_id",
            ticket,
            "id",
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(TicketComment {
                id: r.id.into(),
                ticket_id: r.ticket_id.into(),
                body: r.body,
                visibility: CommentVisibility::parse(&r.visibility)
                    .ok_or_else(|| integrity("comment visibility", &r.visibility))?,
                author_id: r.author_id.map(UserId::from_uuid),
                message_id: r.message_id.map(MessageId::from_uuid),
                created_at: r.created_at,
            })
        })
        .collect()
}

// ---- attachments ----

#[derive(Debug, sqlx::FromRow)]
struct AttachmentRow {
    id: Uuid,
    tenant_id: Uuid,
    ticket_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    filename: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    uploaded_by: Option<Uuid>,
    created_at: OffsetDateTime,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StoreError;

    fn try_from(r: AttachmentRow) -> Result<Self> {
        let owner = match (r.ticket_id, r.conversation_id) {
            (Some(t), None) => AttachmentOwner::Ticket(t.into()),
            (None, Some(c)) => AttachmentOwner::Conversation(c.into()),
            _ => {
                return Err(StoreError::Integrity(format!(
                    "attachment {} has not exactly one of a ticket and a conversation",
                    r.id
                )))
            }
        };
        Ok(Attachment {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            owner,
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            sha256: r.sha256,
            uploaded_by: r.uploaded_by.map(UserId::from_uuid),
            created_at: r.created_at,
        })
    }
}

const ATTACHMENT_COLUMNS: &str = "id, tenant_id, ticket_id, conversation_id, filename, \
     content_type, size_bytes, sha256, uploaded_by, created_at";

/// Stores an attachment; a conversation's also records the conversation's connection (the
/// PostgreSQL key into `conversations` includes it).
pub async fn insert_attachment(tx: &mut Tx<TenantScope>, a: &Attachment) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "INSERT INTO attachments (id, tenant_id, ticket_id, conversation_id, connection_id,
                 filename, content_type, size_bytes, sha256, uploaded_by, created_at)
             VALUES ($1, $2, $3, $4,
                 (SELECT connection_id FROM conversations WHERE tenant_id = $2 AND id = $4),
                 $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.id)
        .bind(tenant)
        .bind(a.owner.ticket_id())
        .bind(a.owner.conversation_id())
        .bind(a.filename.clone())
        .bind(a.content_type.clone())
        .bind(a.size_bytes)
        .bind(a.sha256.clone())
        .bind(a.uploaded_by)
        .bind(a.created_at),
    )
    .await?;
    Ok(())
}

pub async fn find_attachment(
    tx: &mut Tx<TenantScope>,
    id: AttachmentId,
) -> Result<Option<Attachment>> {
    let row: Option<AttachmentRow> = tx
        .find_row("attachments", ATTACHMENT_COLUMNS, id, "")
        .await?;
    row.map(Attachment::try_from).transpose()
}

/// A ticket's attachments, oldest first.
pub async fn attachments(tx: &mut Tx<TenantScope>, ticket: TicketId) -> Result<Vec<Attachment>> {
    let rows: Vec<AttachmentRow> = tx
        .rows_of("attachments", ATTACHMENT_COLUMNS, "ticket_id", ticket, "id")
        .await?;
    rows.into_iter().map(Attachment::try_from).collect()
}

/// Whether an attachment of the tenant, or a queued media message not yet uploaded to Meta,
/// refers to the file `sha256`.
pub async fn sha_in_use(tx: &mut Tx<TenantScope>, sha256: &str) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct Count {
        n: i64,
    }
    let tenant = tx.scope().tenant_id();
    let c: Count = tx
        .fetch_one(
            Query::new(
                "SELECT (SELECT COUNT(*) FROM attachments WHERE tenant_id = $1 AND sha256 = $2)
                      + (SELECT COUNT(*) FROM outbound_media
                         WHERE tenant_id = $1 AND sha256 = $2 AND media_id IS NULL) AS n",
            )
            .bind(tenant)
            .bind(sha256.to_owned()),
        )
        .await?;
    Ok(c.n > 0)
}

// ---- upload quota ----

/// Adds `bytes` to what `user` uploaded on `day` (`YYYY-MM-DD`, UTC) if the total stays within
/// `limit`; returns false (and changes nothing) otherwise. One conditional upsert: on
/// PostgreSQL a concurrent reservation waits for the row and re-checks the sum; on SQLite
/// writers run one at a time. So two uploads at the edge cannot both pass.
pub async fn reserve_upload(
    tx: &mut Tx<TenantScope>,
    user: UserId,
    day: &str,
    bytes: i64,
    limit: i64,
) -> Result<bool> {
    if bytes > limit {
        return Ok(false);
    }
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(
            Query::new(
                "INSERT INTO upload_usage (tenant_id, user_id, day, bytes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, user_id, day) DO UPDATE
                     SET bytes = upload_usage.bytes + excluded.bytes
                     WHERE upload_usage.bytes + excluded.bytes <= $5",
            )
            .bind(tenant)
            .bind(user)
            .bind(day.to_owned())
            .bind(bytes)
            .bind(limit),
        )
        .await?;
    Ok(n == 1)
}

/// The bytes `user` uploaded on `day`.
pub async fn uploaded_on(tx: &mut Tx<TenantScope>, user: UserId, day: &str) -> Result<i64> {
    #[derive(sqlx::FromRow)]
    struct Used {
        bytes: i64,
    }
    let tenant = tx.scope().tenant_id();
    let u: Option<Used> = tx
        .fetch_optional(
            Query::new(
                "SELECT bytes FROM upload_usage WHERE tenant_id = $1 AND user_id = $2 AND day = $3",
            )
            .bind(tenant)
            .bind(user)
            .bind(day.to_owned()),
        )
        .await?;
    Ok(u.map_or(0, |u| u.bytes))
}
