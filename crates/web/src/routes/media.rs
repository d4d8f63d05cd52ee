//! `GET /api/v1/messages/{id}/media`: a customer's downloaded file (the media state shown on
//! every message, `media` in the message JSON, is `messaging::MediaView` in core).
//!
//! The bytes came from a stranger, so they are only ever offered as a download: the type is
//! served as stored only when it is one WhatsApp delivers and well-formed (else
//! `application/octet-stream`), with `Content-Disposition: attachment` and a sanitised name,
//! `nosniff`, and a CSP that forbids everything (`default-src 'none'; sandbox`).

use crate::error::{render, ApiResult, ErrorBody};
use crate::extract::{ApiPath, Auth};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_core::whatsapp::media::{self, MediaFile};
use palisade_domain::MessageId;
use tokio::io::AsyncReadExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

const CSP: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";

/// Download the file of an inbound media message: the stored bytes, as an attachment.
/// `409 media_pending` (with `Retry-After`) while it is being downloaded (see the message's
/// `media.status`),
/// `409 media_failed` when the download was given up (the message names the reason code, also
/// in `media.error.code`), `404 no_media` when the message has no downloadable file.
#[utoipa::path(get, path = "/api/v1/messages/{id}/media", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The file, as an attachment. Content-Type is the stored type when WhatsApp delivers that type, else application/octet-stream", content_type = "application/octet-stream"),
        (status = 403, description = "Missing conversations.read (or the API key scope conversations:read)", body = ErrorBody),
        (status = 404, description = "not_found: no such message in your tenant; no_media: the message has no downloadable file", body = ErrorBody),
        (status = 409, description = "media_pending: not downloaded yet; media_failed: the download was given up", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let file = media::open(&state.services, &p, MessageId::from(id)).await?;
    let (object, content_type, filename) = match file {
        MediaFile::Stored {
            object,
            content_type,
            filename,
        } => (object, content_type, filename),
        MediaFile::Pending => {
            let mut resp = render(
                StatusCode::CONFLICT,
                "media_pending",
                "the media has not been downloaded from WhatsApp yet; try again in a few seconds"
                    .into(),
                None,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return Ok(resp);
        }
        MediaFile::Failed { code, reason } => {
            return Ok(render(
                StatusCode::CONFLICT,
                "media_failed",
                format!("the media could not be downloaded ({code}): {reason}"),
                None,
            ))
        }
        MediaFile::NoMedia => {
            return Ok(render(
                StatusCode::NOT_FOUND,
                "no_media",
                "this message has no downloadable media".into(),
                None,
            ))
        }
    };
    Ok(file_download(
        object,
        &content_type,
        &format!("attachment; filename=\"{filename}\""),
        CSP,
        "reading stored media failed",
    ))
}

/// A stored file as a download, never displayed inline: its type, length and
/// `Content-Disposition` (`disposition`), `X-Content-Type-Options: nosniff`, a
/// `Content-Security-Policy` that runs nothing (`csp`: each route's as documented) and
/// `Cache-Control: private, no-store`. The body is streamed ([`stored_file_body`]; `what` names a read failure in the
/// log). Shared by media and attachments.
pub(crate) fn file_download(
    object: palisade_core::storage::StoredObject,
    content_type: &str,
    disposition: &str,
    csp: &'static str,
    what: &'static str,
) -> Response {
    let size = object.size;
    let mut resp = stored_file_body(object.reader, what).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// A stored file's bytes as a streamed body, 64 KiB at a time; a read error ends the stream
/// (the client sees a cut answer) and is logged as `what`. Shared by media and attachments.
pub(crate) fn stored_file_body(
    reader: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send + Sync>>,
    what: &'static str,
) -> Body {
    let stream = futures_util::stream::unfold(Some(reader), move |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; 64 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), Some(reader)))
            }
            Err(e) => {
                tracing::error!(error = %e, "{what}");
                Some((Err(e), None))
            }
        }
    });
    Body::from_stream(stream)
}
