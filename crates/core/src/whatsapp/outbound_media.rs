//! The send path's hook for media messages sent from an uploaded file
//! (`messaging::attachment`): before the sender posts such a message, [`prepare_body`] uploads
//! the file to `POST /{phone_number_id}/media` with the connection's token (through
//! `GraphClient`, traced like every Graph call) and puts Meta's media id in the body instead
//! of the attachment id.
//!
//! The media id is recorded (`outbound_media.media_id`, with an `attachment.media_uploaded`
//! audit record by `whatsapp-sender`) in its own transaction as soon as Meta returns it, so a
//! retried send (throughput limit, network) does not upload the file again. A failed upload
//! is an outcome of the send: Meta's permanent codes (131053: Meta refused the file) fail the
//! message with the reason; transient ones are retried like any send. A file no longer stored
//! (its ticket or contact deleted meanwhile) or whose bytes no longer match the SHA-256 checked
//! when the message was queued fails the message without any upload.

use super::graph::GraphError;
use crate::audit::AuditEntryExt;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{MessageId, TenantId};
use palisade_store::outbound_media as store;
use palisade_store::SystemScope;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// What the sender does with a queued message's body.
pub enum Prepared {
    /// Send this body (the message's own when it sends no uploaded file).
    Body(Value),
    /// The upload failed: handled like a failed send (retried when transient).
    Graph(GraphError),
    /// The message cannot be sent: fail it with this error (`[{code, title, message}]`).
    Failed(Value),
}

fn failed(title: &str, message: &str) -> Prepared {
    Prepared::Failed(json!([{ "code": 0, "title": title, "message": message }]))
}

/// Prepares the Graph body of message `message_id` (of `tenant`), uploading its file first
/// when it sends one that is not uploaded yet. Errors (database, disk) are the sender's to
/// retry after its lease.
pub async fn prepare_body(
    s: &Services,
    token: &str,
    phone_number_id: &str,
    tenant: TenantId,
    message_id: MessageId,
    mut body: Value,
) -> AppResult<Prepared> {
    let mut tx = s
        .store
        .begin_read(SystemScope::new("whatsapp.outbound.media"))
        .await?;
    let file = store::find_for_send(&mut tx, tenant, message_id).await?;
    drop(tx);
    let Some(file) = file else {
        return Ok(Prepared::Body(body));
    };
    let media_id =
        match file.media_id.clone() {
            Some(id) => id,
            None => {
                let Some(mut object) = s.storage.open(tenant, &file.sha256).await.map_err(|e| {
                    anyhow::anyhow!("opening the file of message {message_id}: {e}")
                })?
                else {
                    return Ok(failed(
                        "attachment_missing",
                        "the file to send is no longer stored (its ticket or contact was deleted)",
                    ));
                };
                let mut bytes = Vec::with_capacity(usize::try_from(object.size).unwrap_or(0));
                object.reader.read_to_end(&mut bytes).await.map_err(|e| {
                    anyhow::anyhow!("reading the file of message {message_id}: {e}")
                })?;
                if hex::encode(Sha256::digest(&bytes)) != file.sha256 {
                    return Ok(failed(
                    "attachment_corrupt",
                    "the stored file no longer matches the one checked when the message was queued",
                ));
                }
                let id = match s
                    .graph
                    .upload_media(
                        token,
                        phone_number_id,
                        &file.content_type,
                        &file.filename,
                        bytes,
                    )
                    .await
                {
                    Ok(id) => id,
                    Err(e) => return Ok(Prepared::Graph(e)),
                };
                let mut uow = UnitOfWork::system(
                    s,
                    SystemActor::OutboundSender,
                    SystemScope::new("whatsapp.outbound.media"),
                )
                .await?
                .for_tenant(tenant);
                let now = uow.now();
                store::record_upload(uow.tx(), tenant, message_id, &id, now).await?;
                uow.audit(
                    uow.entry("attachment.media_uploaded")
                        .target("attachment", file.attachment_id)
                        .metadata(json!({
                            "message_id": message_id, "media_id": id, "sha256": file.sha256,
                            "size_bytes": file.size_bytes,
                        })),
                )
                .await?;
                uow.commit().await?;
                id
            }
        };
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(o) = body.get_mut(&kind).and_then(Value::as_object_mut) {
        o.remove("attachment_id");
        o.insert("id".into(), json!(media_id));
    }
    Ok(Prepared::Body(body))
}
