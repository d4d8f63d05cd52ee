//! `POST /inbox/{id}/attachments`: a file sent from the composer as WhatsApp media, answered by
//! the console (a multipart form read field by field, its CSRF token before the file).

use super::*;

/// The media types the composer's "Attach file" offers.
pub(super) const FILE_KINDS: [&str; 2] = ["image", "document"];

/// `POST /inbox/{id}/attachments`: the composer's "Attach file" (a `multipart/form-data` form
/// that works without script: `csrf`, `type`, `caption`, `file`). Uploads the file to the
/// conversation and sends it, with the API's checks (same origin, the session's CSRF token, no
/// read-only impersonation) and the same use cases (`tickets::attachments::upload`,
/// `messaging::send_message`); then back to the conversation.
pub(super) async fn send_file(
    State(state): State<AppState>,
    viewer: Viewer,
    crate::extract::Meta(meta): crate::extract::Meta,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Response {
    use axum::extract::{FromRequest, Multipart};
    use palisade_core::tickets::attachments::{self, IncomingFile};
    let s = &state.services;
    let Ok(id) = Uuid::parse_str(&id) else {
        return app_error(AppError::NotFound("conversation"));
    };
    let owner = palisade_domain::AttachmentOwner::Conversation(ConversationId::from(id));
    let max = match attachments::may_upload(s, &viewer.principal, owner).await {
        Ok(m) => m,
        Err(e) => return app_error(e),
    };
    let bad = |m: &str| {
        app_error(AppError::BadRequest {
            code: palisade_core::error::code::INVALID_BODY,
            message: format!("This form could not be read: {m}"),
        })
    };
    let mut form = match Multipart::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => return bad(&e.body_text()),
    };
    let (mut csrf, mut kind, mut caption, mut file) =
        (String::new(), String::new(), String::new(), None);
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad(&e.body_text()),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            // The CSRF token comes first in the form: nothing is read for a forged post.
            if let Err(r) = crate::console::forms::check_change(s, &viewer, &headers, &csrf) {
                return r;
            }
            let filename = field.file_name().unwrap_or_default().to_owned();
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if (bytes.len() + chunk.len()) as u64 > max {
                            return app_error(attachments::too_large(max));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return bad(&e.body_text()),
                }
            }
            file = Some(IncomingFile { filename, bytes });
            continue;
        }
        let value = match field.text().await {
            Ok(v) if v.len() <= 4096 => v,
            Ok(_) => return bad("a field is too long"),
            Err(e) => return bad(&e.body_text()),
        };
        match name.as_str() {
            "csrf" => csrf = value,
            "type" => kind = value,
            "caption" => caption = value,
            _ => return bad("unexpected field"),
        }
    }
    if let Err(r) = crate::console::forms::check_change(s, &viewer, &headers, &csrf) {
        return r;
    }
    let Some(file) = file.filter(|f| !f.bytes.is_empty()) else {
        return app_error(AppError::field("file", "choose a file to send"));
    };
    let Some(kind) = FILE_KINDS
        .iter()
        .find(|k| **k == kind)
        .and_then(|k| k.parse::<palisade_domain::MessageKind>().ok())
    else {
        return app_error(AppError::field(
            "type",
            "send the file as an image or a document",
        ));
    };
    let a = match attachments::upload(s, &viewer.principal, &meta, owner, file).await {
        Ok(a) => a,
        Err(e) => return app_error(e),
    };
    let mut object = serde_json::Map::new();
    object.insert("attachment_id".into(), serde_json::json!(a.id));
    if !caption.trim().is_empty() {
        object.insert("caption".into(), serde_json::json!(caption.trim()));
    }
    let object = serde_json::Value::Object(object);
    let out = messaging::Outgoing::Media { kind, object };
    match messaging::send_message(s, &viewer.principal, &meta, ConversationId::from(id), out).await
    {
        Ok(_) => crate::console::auth_pages::see_other(&format!("/inbox/{id}")),
        Err(e) => app_error(e),
    }
}
