//! Attachments of tickets and conversations: upload (checked, typed by content, quota
//! reserved, stored by SHA-256) and download (audited). See [`super::sniff`] for what is
//! refused and why, and `docs/security.md` ("Uploads") for the whole set of controls. A
//! conversation's attachment is a file to send as WhatsApp media (`messaging::send_message`);
//! a ticket's may be sent too.

use super::sniff;
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::storage::StoredObject;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{Attachment, AttachmentId, AttachmentName, AttachmentOwner, Permission};
use palisade_store::tickets as store;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The UTC day of `now`, `YYYY-MM-DD` (the quota's period).
fn day(now: OffsetDateTime) -> String {
    let d = now.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Seconds until the next UTC midnight (when the quota starts again), at least 1.
fn until_midnight(now: OffsetDateTime) -> u64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    let next = now
        .date()
        .next_day()
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now);
    u64::try_from((next - now).whole_seconds())
        .unwrap_or(1)
        .max(1)
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// The `413` for a file over `PALISADE_UPLOAD_MAX_BYTES`.
pub fn too_large(max: u64) -> AppError {
    AppError::PayloadTooLarge {
        code: code::FILE_TOO_LARGE,
        message: format!("the file is larger than the {} allowed", mib(max)),
    }
}

fn quota_exceeded(s: &Services, now: OffsetDateTime) -> AppError {
    AppError::TooManyRequests {
        code: code::UPLOAD_QUOTA_EXCEEDED,
        message: format!(
            "you have reached your upload quota of {} per day (UTC); try again tomorrow",
            mib(s.settings.upload_quota_bytes_per_day)
        ),
        retry_after_secs: until_midnight(now),
    }
}

/// The permission that uploading to `owner` needs: `tickets.write` for a ticket,
/// `conversations.write` for a conversation.
fn write_permission(owner: AttachmentOwner) -> Permission {
    match owner {
        AttachmentOwner::Ticket(_) => Permission::TicketsWrite,
        AttachmentOwner::Conversation(_) => Permission::ConversationsWrite,
    }
}

/// The permission that reading an attachment of `owner` needs.
pub fn read_permission(owner: AttachmentOwner) -> Permission {
    match owner {
        AttachmentOwner::Ticket(_) => Permission::TicketsRead,
        AttachmentOwner::Conversation(_) => Permission::ConversationsRead,
    }
}

/// `404` unless `owner` is a ticket or conversation of the tenant; `lock` takes the ticket's
/// row lock (a conversation needs none: its attachments change nothing on it).
async fn owner_exists(
    tx: &mut palisade_store::Tx<palisade_store::TenantScope>,
    owner: AttachmentOwner,
    lock: bool,
) -> AppResult<()> {
    let found = match owner {
        AttachmentOwner::Ticket(t) if lock => store::find_for_update(tx, t).await?.is_some(),
        AttachmentOwner::Ticket(t) => store::find(tx, t).await?.is_some(),
        AttachmentOwner::Conversation(c) => palisade_store::conversations::find_conversation(tx, c)
            .await?
            .is_some(),
    };
    if found {
        Ok(())
    } else {
        Err(AppError::NotFound(owner.kind()))
    }
}

/// Checks made before the body is read, so a refused upload is not streamed in: the
/// permission, the ticket or conversation (`404`) and a quota not already spent (`429`).
/// Returns the largest file accepted, in bytes.
pub async fn may_upload(s: &Services, p: &Principal, owner: AttachmentOwner) -> AppResult<u64> {
    p.require(write_permission(owner))?;
    let now = s.clock.now();
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    owner_exists(&mut tx, owner, false).await?;
    let used = store::uploaded_on(&mut tx, p.user_id, &day(now)).await?;
    if u64::try_from(used).unwrap_or(u64::MAX) >= s.settings.upload_quota_bytes_per_day {
        return Err(quota_exceeded(s, now));
    }
    Ok(s.settings.upload_max_bytes)
}

/// A file as it arrived: the name the client gave (untrusted) and its bytes (at most
/// `PALISADE_UPLOAD_MAX_BYTES`, enforced while they were read).
pub struct IncomingFile {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// Records a refused upload in its own transaction (the upload's own is rolled back), with the
/// reason and no content or name.
async fn audit_refusal(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    owner: AttachmentOwner,
    size: usize,
    reason: &str,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    uow.audit(
        uow.entry("attachment.refused")
            .target(owner.kind(), owner.id())
            .metadata(json!({ "size_bytes": size, "reason": reason })),
    )
    .await?;
    uow.commit().await
}

/// Attaches a file to a ticket or uploads it to a conversation. Refusals: `413
/// file_too_large`, `422 file_type_not_allowed` (the reason and the accepted types), `429
/// upload_quota_exceeded` (reserved in the attachment's transaction, so concurrent uploads
/// cannot together pass the quota), `404` for a ticket or conversation not of the tenant.
pub async fn upload(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    owner: AttachmentOwner,
    file: IncomingFile,
) -> AppResult<Attachment> {
    p.require(write_permission(owner))?;
    let tenant = p.tenant_scope()?.tenant_id();
    let size = file.bytes.len();
    let max = s.settings.upload_max_bytes;
    if u64::try_from(size).unwrap_or(u64::MAX) > max {
        return Err(too_large(max));
    }
    let name = AttachmentName::sanitise(&file.filename);
    let allowed = &s.settings.upload_allowed_types;
    let mime = match sniff::sniff(&file.bytes, name.extension().as_deref(), allowed) {
        Ok(m) => m,
        Err(refusal) => {
            audit_refusal(s, p, meta, owner, size, &refusal.0).await?;
            return Err(AppError::Unprocessable {
                code: code::FILE_TYPE_NOT_ALLOWED,
                message: format!(
                    "{}. Accepted types: {}",
                    refusal.0,
                    sniff::describe(allowed)
                ),
            });
        }
    };
    let sha = hex::encode(Sha256::digest(&file.bytes));
    // The bytes go to a temporary file first; it becomes the object (named by its hash) in the
    // attachment's transaction, once the quota is reserved.
    let mut pending = s
        .storage
        .begin(tenant)
        .await
        .map_err(|e| anyhow::anyhow!("opening the upload's file: {e}"))?;
    pending
        .write(&file.bytes)
        .await
        .map_err(|e| anyhow::anyhow!("writing the upload's file: {e}"))?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    owner_exists(uow.tx(), owner, true).await?;
    let reserved = store::reserve_upload(
        uow.tx(),
        p.user_id,
        &day(now),
        i64::try_from(size).unwrap_or(i64::MAX),
        i64::try_from(s.settings.upload_quota_bytes_per_day).unwrap_or(i64::MAX),
    )
    .await?;
    if !reserved {
        drop(uow);
        audit_refusal(s, p, meta, owner, size, "upload quota exceeded").await?;
        return Err(quota_exceeded(s, now));
    }
    let a = Attachment {
        id: AttachmentId::new(),
        tenant_id: tenant,
        owner,
        filename: name.as_str().to_owned(),
        content_type: mime.to_owned(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        sha256: sha.clone(),
        uploaded_by: Some(p.user_id),
        created_at: now,
    };
    store::insert_attachment(uow.tx(), &a).await?;
    uow.audit(
        uow.entry("attachment.uploaded")
            .target("attachment", a.id)
            .metadata(json!({
                owner.kind(): owner.id(), "content_type": mime, "size_bytes": size,
                "sha256": sha,
            })),
    )
    .await?;
    pending
        .finish_as(&sha)
        .await
        .map_err(|e| anyhow::anyhow!("storing the upload's file: {e}"))?;
    if let Err(e) = uow.commit().await {
        // The file is in place but its row is not: remove it unless another attachment of
        // the tenant has the same content (files are stored by hash and shared).
        forget_unreferenced(s, p, meta, &sha).await;
        return Err(e);
    }
    Ok(a)
}

/// Removes the tenant's stored file `sha` when no attachment refers to it (an upload whose
/// transaction failed after its file was put in place). Failures are logged by hash only.
async fn forget_unreferenced(s: &Services, p: &Principal, meta: &RequestMeta, sha: &str) {
    let Ok(scope) = p.tenant_scope() else {
        return;
    };
    let tenant = scope.tenant_id();
    let in_use = async {
        let mut uow = UnitOfWork::begin(s, p, meta).await?;
        AppResult::Ok(store::sha_in_use(uow.tx(), sha).await?)
    }
    .await;
    match in_use {
        Ok(false) => {
            if let Err(e) = s.storage.delete(tenant, sha).await {
                tracing::warn!(error = %e, file = sha, "could not remove a failed upload's file");
            }
        }
        Ok(true) => {}
        Err(e) => {
            tracing::warn!(error = %e, file = sha, "could not check a failed upload's file; left in place");
        }
    }
}

/// An attachment opened for download.
pub struct AttachmentFile {
    pub attachment: Attachment,
    pub object: StoredObject,
}

/// Opens an attachment's file for download, recording the download in the audit log. A
/// ticket's needs `tickets.read`, a conversation's `conversations.read`.
pub async fn open(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: AttachmentId,
) -> AppResult<AttachmentFile> {
    p.require(Permission::TicketsRead)
        .or_else(|_| p.require(Permission::ConversationsRead))?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let a = store::find_attachment(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("attachment"))?;
    p.require(read_permission(a.owner))?;
    uow.audit(
        uow.entry("attachment.downloaded")
            .target("attachment", id)
            .metadata(json!({ a.owner.kind(): a.owner.id(), "sha256": a.sha256 })),
    )
    .await?;
    uow.commit().await?;
    let object = s
        .storage
        .open(tenant, &a.sha256)
        .await
        .map_err(|e| anyhow::anyhow!("opening attachment {id}: {e}"))?
        .ok_or_else(|| anyhow::anyhow!("the file of attachment {id} is missing from storage"))?;
    Ok(AttachmentFile {
        attachment: a,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_quota_day_is_utc() {
        assert_eq!(day(datetime!(2026-12-06 23:30 -05:00)), "2026-12-07");
        assert_eq!(until_midnight(datetime!(2026-12-06 23:59:30 UTC)), 30);
        assert_eq!(mib(10 * 1024 * 1024), "10 MiB");
    }
}

/// RFC 5987 `attr-char`s are left as they are; everything else is percent-encoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition: attachment` for a (sanitised) file name: an ASCII `filename` fallback
/// (anything else, quotes and backslashes as `_`) and the exact name as RFC 5987 `filename*`.
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(filename, ATTR_CHAR);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod disposition_tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely_and_encoded_exactly() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("naïve \"x\".txt"),
            "attachment; filename=\"na_ve _x_.txt\"; filename*=UTF-8''na%C3%AFve%20%22x%22.txt"
        );
    }
}
