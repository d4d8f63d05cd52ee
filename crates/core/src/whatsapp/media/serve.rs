//! Handing downloaded files to the team: the media state of listed messages, and a stored file
//! opened for download with a safe `Content-Type` and a sanitised file name.

use crate::auth::Principal;
use crate::storage::StoredObject;
use crate::{AppError, AppResult, Services};
use palisade_domain::{MediaStatus, MessageDirection, MessageId, Permission};
use palisade_store::media::{self as store, MessageMedia};
use palisade_store::messages::{self, Message};
use palisade_store::outbound_media::OutboundMedia;
use palisade_store::{TenantScope, Tx};
use std::collections::HashMap;

/// The media state of listed messages: inbound media messages' downloads, and the uploaded
/// files outbound ones send.
pub async fn attach(tx: &mut Tx<TenantScope>, list: &mut [Message]) -> palisade_store::Result<()> {
    let sent: Vec<MessageId> = list
        .iter()
        .filter(|m| m.direction == MessageDirection::Outbound && m.kind.is_media())
        .map(|m| m.id)
        .collect();
    if !sent.is_empty() {
        let mut files: HashMap<MessageId, OutboundMedia> =
            palisade_store::outbound_media::for_messages(tx, &sent)
                .await?
                .into_iter()
                .map(|f| (f.message_id, f))
                .collect();
        for m in list.iter_mut() {
            if let Some(f) = files.remove(&m.id) {
                m.sent_file = Some(f);
            }
        }
    }
    let ids: Vec<MessageId> = list
        .iter()
        .filter(|m| m.direction == MessageDirection::Inbound && m.kind.is_media())
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut found: HashMap<MessageId, MessageMedia> = store::for_messages(tx, &ids)
        .await?
        .into_iter()
        .map(|m| (m.message_id, m))
        .collect();
    for m in list
        .iter_mut()
        .filter(|m| m.direction == MessageDirection::Inbound)
    {
        m.media = found.remove(&m.id);
    }
    Ok(())
}

/// What `GET /api/v1/messages/{id}/media` finds.
pub enum MediaFile {
    Stored {
        object: StoredObject,
        /// A safe `Content-Type` ([`safe_content_type`]).
        content_type: String,
        /// A sanitised file name for `Content-Disposition`.
        filename: String,
    },
    /// Not downloaded yet.
    Pending,
    /// Given up: the stable code and a readable reason.
    Failed { code: String, reason: String },
    /// The message has no downloadable media (text, notes, outbound messages, …).
    NoMedia,
}

/// Opens a message's downloaded file. Another tenant's message is not found.
pub async fn open(s: &Services, p: &Principal, message_id: MessageId) -> AppResult<MediaFile> {
    p.require(Permission::ConversationsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if messages::find_message(&mut tx, message_id).await?.is_none() {
        return Err(AppError::NotFound("message"));
    }
    let media = store::find(&mut tx, message_id).await?;
    let tenant = tx.scope().tenant_id();
    drop(tx);
    let Some(media) = media else {
        return Ok(MediaFile::NoMedia);
    };
    match media.status {
        MediaStatus::Pending => Ok(MediaFile::Pending),
        MediaStatus::Failed => Ok(MediaFile::Failed {
            code: media.error_code.clone().unwrap_or_else(|| "failed".into()),
            reason: media.error.clone().unwrap_or_default(),
        }),
        MediaStatus::Stored => {
            let object = match media.storage_key.as_deref() {
                Some(key) => s
                    .storage
                    .open(tenant, key)
                    .await
                    .map_err(|e| anyhow::anyhow!("opening stored media: {e}"))?,
                None => None,
            };
            let Some(object) = object else {
                tracing::warn!(message = %message_id, "stored media file is missing from storage");
                return Ok(MediaFile::Failed {
                    code: "file_missing".into(),
                    reason: "the stored file is missing from the server's storage".into(),
                });
            };
            Ok(MediaFile::Stored {
                object,
                content_type: safe_content_type(media.mime_type.as_deref()),
                filename: download_filename(&media),
            })
        }
    }
}

/// The types WhatsApp delivers (reference §3), served as themselves; anything else, or a
/// malformed value, is served as `application/octet-stream`, so a stored file can never be
/// rendered as HTML or script by the browser.
const SAFE_TYPES: [(&str, &str); 18] = [
    ("audio/aac", "aac"),
    ("audio/amr", "amr"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/ogg", "ogg"),
    ("text/plain", "txt"),
    ("application/pdf", "pdf"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/vnd.ms-powerpoint", "ppt"),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("video/mp4", "mp4"),
    ("video/3gpp", "3gp"),
];

const OCTET_STREAM: &str = "application/octet-stream";

fn token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'+'))
}

/// The `Content-Type` to serve a stored file with (see [`SAFE_TYPES`]); well-formed parameters
/// (`; codecs=opus`) are kept.
pub fn safe_content_type(mime: Option<&str>) -> String {
    let Some(mime) = mime else {
        return OCTET_STREAM.into();
    };
    let mut parts = mime.split(';');
    let base = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !SAFE_TYPES.iter().any(|(t, _)| *t == base) {
        return OCTET_STREAM.into();
    }
    let mut params = Vec::new();
    for p in parts {
        match p.split_once('=') {
            Some((k, v)) if token(k.trim()) && token(v.trim()) => {
                params.push(format!("{}={}", k.trim().to_ascii_lowercase(), v.trim()));
            }
            // A malformed parameter: keep the type, drop every parameter.
            _ => return base,
        }
    }
    std::iter::once(base)
        .chain(params)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The file name offered for download: the sender's document name when it survives
/// sanitising (ASCII letters, digits, `.`, `-`, `_`; at most 100 characters; no leading dot),
/// else `<type>-<message id>.<extension>`.
pub fn download_filename(m: &MessageMedia) -> String {
    let from_sender = m.filename.as_deref().and_then(|name| {
        let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
        let clean: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let clean = clean.trim_start_matches(['.', '_']).to_owned();
        let clean: String = clean
            .chars()
            .rev()
            .take(100)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        clean
            .chars()
            .any(|c| c.is_ascii_alphanumeric())
            .then_some(clean)
    });
    from_sender.unwrap_or_else(|| {
        let base = m
            .mime_type
            .as_deref()
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let ext = SAFE_TYPES
            .iter()
            .find(|(t, _)| *t == base)
            .map_or("bin", |(_, e)| e);
        format!("{}-{}.{ext}", m.kind, m.message_id.as_uuid().simple())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_well_formed_types_are_served_as_themselves() {
        assert_eq!(safe_content_type(Some("image/jpeg")), "image/jpeg");
        assert_eq!(
            safe_content_type(Some("audio/ogg; codecs=opus")),
            "audio/ogg; codecs=opus"
        );
        assert_eq!(safe_content_type(Some("IMAGE/PNG")), "image/png");
        for bad in [
            "text/html",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/javascript",
            "image/jpeg\r\nX-Evil: 1",
            "",
        ] {
            assert_eq!(safe_content_type(Some(bad)), OCTET_STREAM, "{bad:?}");
        }
        assert_eq!(
            safe_content_type(Some("text/plain; charset=\"x\r\n\"")),
            "text/plain"
        );
        assert_eq!(safe_content_type(None), OCTET_STREAM);
    }

    fn media(kind: &str, mime: Option<&str>, filename: Option<&str>) -> MessageMedia {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        MessageMedia {
            message_id: MessageId::from_uuid(uuid::Uuid::nil()),
            tenant_id: palisade_domain::TenantId::from_uuid(uuid::Uuid::nil()),
            kind: palisade_domain::MessageKind::parse(kind),
            media_id: "1".into(),
            mime_type: mime.map(Into::into),
            sha256: None,
            filename: filename.map(Into::into),
            status: MediaStatus::Stored,
            size_bytes: None,
            content_sha256: None,
            storage_key: None,
            attempts: 0,
            next_attempt_at: now,
            error_code: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn download_names_are_sanitised_or_generated() {
        let nil = uuid::Uuid::nil().simple().to_string();
        assert_eq!(
            download_filename(&media("image", Some("image/jpeg"), None)),
            format!("image-{nil}.jpg")
        );
        assert_eq!(
            download_filename(&media(
                "document",
                Some("application/pdf"),
                Some("Invoice 7.pdf")
            )),
            "Invoice_7.pdf"
        );
        assert_eq!(
            download_filename(&media("document", None, Some("../../etc/passwd"))),
            "passwd"
        );
        assert_eq!(
            download_filename(&media("document", None, Some("a\"b\r\n.pdf"))),
            "a_b__.pdf"
        );
        assert_eq!(
            download_filename(&media("document", Some("text/html"), Some("..."))),
            format!("document-{nil}.bin")
        );
    }
}
