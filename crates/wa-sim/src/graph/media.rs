//! Media: `POST /{phone_number_id}/media` with Meta's MIME and size limits, `DELETE /{media_id}`,
//! and the expiring download URL with its fault modes (held and corrupted downloads).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{authenticate, check_version, ok, own_phone, GResult, St, Q};
use crate::error::GraphError;
use crate::ids;
use crate::state::{lock, Media};

/// Allowed MIME types (reference §3) and the size limit of each kind.
fn media_limit(mime: &str) -> Option<usize> {
    const MB: usize = 1024 * 1024;
    let base = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => Some(16 * MB),
        "text/plain"
        | "application/pdf"
        | "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            Some(100 * MB)
        }
        "image/jpeg" | "image/png" => Some(5 * MB),
        "image/webp" => Some(500 * 1024),
        "video/mp4" | "video/3gpp" => Some(16 * MB),
        _ => None,
    }
}

pub(super) async fn upload(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> GResult {
    let (_, phone) = own_phone(&st, &version, &id, "post", &headers, &q)?;
    let mut multipart = multipart.map_err(|_| {
        GraphError::invalid_parameter("The upload must be multipart/form-data with a file field.")
    })?;
    let mut product = None;
    let mut declared = None;
    let mut file: Option<(Bytes, Option<String>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(GraphError::media_upload(format!(
                    "Could not read the upload: {e}"
                )))
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let content_type = field.content_type().map(str::to_owned);
        let data = field
            .bytes()
            .await
            .map_err(|e| GraphError::media_upload(format!("Could not read the upload: {e}")))?;
        match name.as_str() {
            "messaging_product" => product = Some(String::from_utf8_lossy(&data).into_owned()),
            "type" => declared = Some(String::from_utf8_lossy(&data).trim().to_owned()),
            "file" => file = Some((data, content_type)),
            _ => {}
        }
    }
    match product.as_deref() {
        Some("whatsapp") => {}
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param messaging_product must be 'whatsapp'.",
            ))
        }
    }
    let Some((bytes, file_type)) = file else {
        return Err(GraphError::invalid_parameter(
            "The parameter file is required.",
        ));
    };
    let Some(mime) = declared.or(file_type) else {
        return Err(GraphError::invalid_parameter(
            "The parameter type is required.",
        ));
    };
    if st.cfg().media_refuse_uploads {
        return Err(GraphError::media_upload(
            "The file could not be processed (the simulator refuses every upload).",
        ));
    }
    let Some(limit) = media_limit(&mime) else {
        return Err(GraphError::media_upload(format!(
            "Param file must be a file with one of the supported media types; got {mime}."
        )));
    };
    if bytes.is_empty() {
        return Err(GraphError::media_upload("The uploaded file is empty."));
    }
    if bytes.len() > limit {
        return Err(GraphError::media_upload(format!(
            "The file is too large for {mime}: {} bytes, max {limit}.",
            bytes.len()
        )));
    }
    let media = new_media(&phone.id, &mime, bytes);
    let media_id = media.id.clone();
    lock(&st.inner).media.insert(media_id.clone(), media);
    Ok(ok(&version, StatusCode::OK, json!({"id": media_id})))
}

pub fn new_media(phone_id: &str, mime: &str, bytes: Bytes) -> Media {
    Media {
        id: ids::numeric_id(),
        phone_id: phone_id.to_owned(),
        mime_type: mime.to_owned(),
        sha256_hex: hex::encode(Sha256::digest(&bytes)),
        bytes,
    }
}

/// The base64 SHA-256 used in inbound webhook media objects.
pub fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub(super) async fn download(State(st): St, Query(q): Q, headers: HeaderMap) -> Response {
    let owner = match authenticate(&st, &headers, &HashMap::new()) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let not_found = || {
        (StatusCode::NOT_FOUND, "Not Found: the media URL is unknown or has expired; request a new one with GET /{media-id}.").into_response()
    };
    let (Some(mid), Some(ext), Some(hash)) = (q.get("mid"), q.get("ext"), q.get("hash")) else {
        return not_found();
    };
    let Ok(expires) = ext.parse::<u64>() else {
        return not_found();
    };
    if st.media_url_hash(mid, expires) != *hash || ids::unix_millis() >= expires {
        return not_found();
    }
    let media = lock(&st.inner).media.get(mid).cloned();
    match media {
        Some(m) if m.phone_id == owner => {
            if st.cfg().media_hold_downloads {
                use std::sync::atomic::Ordering;
                st.media_downloads_waiting.fetch_add(1, Ordering::SeqCst);
                while st.cfg().media_hold_downloads && !*st.shutdown.borrow() {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                st.media_downloads_waiting.fetch_sub(1, Ordering::SeqCst);
            }
            let bytes = if st.cfg().media_corrupt_downloads {
                let mut v = m.bytes.to_vec();
                if let Some(b) = v.first_mut() {
                    *b ^= 0xff;
                }
                Bytes::from(v)
            } else {
                m.bytes
            };
            let mut resp = bytes.into_response();
            if let Ok(v) = HeaderValue::from_str(&m.mime_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        _ => not_found(),
    }
}

/// `DELETE /{version}/{media_id}`.
pub(super) async fn delete_media(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    let mut inner = lock(&st.inner);
    match inner.media.get(&id) {
        None => Err(GraphError::unknown_object("delete", &id)),
        Some(m) if m.phone_id != owner => Err(GraphError::permission()),
        Some(_) => {
            inner.media.remove(&id);
            Ok(ok(&version, StatusCode::OK, json!({"success": true})))
        }
    }
}
