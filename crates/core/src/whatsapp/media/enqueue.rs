//! Download jobs, inserted in the transaction that stores inbound media messages, so a message
//! is never stored without its job; the worker is woken after the commit.

use super::clip;
use crate::{AppResult, UnitOfWork};
use palisade_domain::{MediaStatus, MessageDirection};
use palisade_store::media::{self as store, NewMediaJob};
use palisade_store::messages::NewMessage;
use palisade_store::SystemScope;
use serde_json::Value;

fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn job_for(m: &NewMessage) -> Option<NewMediaJob> {
    if m.direction != MessageDirection::Inbound || !m.kind.is_media() {
        return None;
    }
    let obj = m.body.get(m.kind.as_str());
    let field = |k: &str| {
        obj.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(|s| clip(s, 255))
    };
    let media_id = obj
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let usable = valid_media_id(media_id);
    Some(NewMediaJob {
        message_id: m.id,
        tenant_id: m.tenant_id,
        kind: m.kind.clone(),
        media_id: clip(media_id, 128),
        mime_type: field("mime_type"),
        sha256: field("sha256"),
        filename: field("filename"),
        status: if usable {
            MediaStatus::Pending
        } else {
            MediaStatus::Failed
        },
        error_code: (!usable).then_some("invalid_media_id"),
        error: (!usable).then(|| "the webhook's media object has no usable media id".to_owned()),
        created_at: m.created_at,
    })
}

/// Inserts a download job for every inbound media message among `messages`, in the unit of
/// work that stores them, and once it commits wakes this node's worker, so media lands within
/// seconds. Returns how many were queued.
pub async fn enqueue_downloads(
    uow: &mut UnitOfWork<'_, SystemScope>,
    messages: &[NewMessage],
) -> AppResult<usize> {
    let jobs: Vec<NewMediaJob> = messages.iter().filter_map(job_for).collect();
    if !jobs.is_empty() {
        store::enqueue(uow.tx(), &jobs).await?;
        uow.after_commit(|s| s.media_downloads.notify_one());
    }
    Ok(jobs.len())
}
