//! Sending an uploaded file as WhatsApp media: `{"type": "image", "image": {"attachment_id":
//! "…", "caption": "…"}}` (also `document`, `audio`, `video`, `sticker`). The attachment (a
//! conversation's upload, or a ticket's) must be of the tenant (`404`), of a type WhatsApp
//! accepts for the message type (`422 media_type_not_allowed`) and within Meta's size limit
//! for it (`422 media_too_large`). The message is queued with the file's description in
//! `outbound_media`; the sender uploads the file to Meta when it sends the message
//! (`whatsapp::outbound_media`).

use crate::error::code;
use crate::whatsapp::media::type_max_bytes;
use crate::{AppError, AppResult};
use palisade_domain::{Attachment, AttachmentId, MessageKind};

/// The MIME types WhatsApp accepts for each media message type (reference §3).
pub fn accepted_types(kind: &MessageKind) -> &'static [&'static str] {
    match kind {
        MessageKind::Image => &["image/jpeg", "image/png"],
        MessageKind::Video => &["video/mp4", "video/3gpp"],
        MessageKind::Audio => &[
            "audio/aac",
            "audio/amr",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg",
        ],
        MessageKind::Sticker => &["image/webp"],
        MessageKind::Document => &[
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ],
        _ => &[],
    }
}

/// The attachment id of a media object, when it names one (`check_media` checked its shape).
pub fn attachment_id(object: &serde_json::Value) -> Option<AttachmentId> {
    object
        .get("attachment_id")
        .and_then(|v| v.as_str())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .map(AttachmentId::from_uuid)
}

fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Whether WhatsApp takes `a` as a `kind` message: its type and Meta's size limit for it.
pub fn check_sendable(kind: &MessageKind, a: &Attachment) -> AppResult<()> {
    let types = accepted_types(kind);
    if !types.contains(&a.content_type.as_str()) {
        return Err(AppError::Unprocessable {
            code: code::MEDIA_TYPE_NOT_ALLOWED,
            message: format!(
                "WhatsApp does not accept {} as {kind}; accepted types for {kind}: {}",
                a.content_type,
                types.join(", ")
            ),
        });
    }
    let max = type_max_bytes(kind);
    if u64::try_from(a.size_bytes).unwrap_or(u64::MAX) > max {
        return Err(AppError::Unprocessable {
            code: code::MEDIA_TOO_LARGE,
            message: format!(
                "WhatsApp accepts {kind} files of at most {} ({} bytes); this file is {} bytes",
                size_text(max),
                max,
                a.size_bytes
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{AttachmentOwner, ConversationId, TenantId};

    fn file(mime: &str, size: i64) -> Attachment {
        Attachment {
            id: AttachmentId::new(),
            tenant_id: TenantId::new(),
            owner: AttachmentOwner::Conversation(ConversationId::new()),
            filename: "f".into(),
            content_type: mime.into(),
            size_bytes: size,
            sha256: "0".repeat(64),
            uploaded_by: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn types_and_limits_are_metas() {
        assert!(check_sendable(&MessageKind::Image, &file("image/png", 5 * 1024 * 1024)).is_ok());
        let e = check_sendable(&MessageKind::Image, &file("image/png", 5 * 1024 * 1024 + 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("5 MiB"), "{e}");
        assert!(check_sendable(&MessageKind::Image, &file("image/gif", 10)).is_err());
        assert!(check_sendable(&MessageKind::Document, &file("image/png", 10)).is_err());
        assert!(check_sendable(&MessageKind::Document, &file("application/pdf", 10)).is_ok());
        let e = check_sendable(&MessageKind::Sticker, &file("image/webp", 600 * 1024))
            .unwrap_err()
            .to_string();
        assert!(e.contains("500 KiB"), "{e}");
    }
}
