//! The Graph API surface: `/{version}/…` routes and the media download URL.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{GraphError, WINDOW_DETAILS, WINDOW_TITLE};
use crate::ids;
use crate::state::{lock, AppState, Media, Outbound, Phone, Template};
use crate::validate::{self, Request};
use crate::webhook;

type St = State<Arc<AppState>>;
type Q = Query<HashMap<String, String>>;
type GResult = Result<Response, GraphError>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/whatsapp_business/attachments/", get(download))
        .route("/whatsapp_business/attachments", get(download))
        .route(
            "/{version}/{id}",
            get(get_object).post(post_object).delete(delete_object),
        )
        .route("/{version}/{id}/messages", post(send))
        .route(
            "/{version}/{id}/media",
            post(upload).layer(DefaultBodyLimit::max(101 * 1024 * 1024)),
        )
        .route("/{version}/{id}/phone_numbers", get(list_phone_numbers))
        .route(
            "/{version}/{id}/subscribed_apps",
            get(subscribed_apps).post(subscribe_app),
        )
        .route("/{version}/{id}/register", post(register))
        .route(
            "/{version}/{id}/message_templates",
            get(list_templates)
                .post(create_template)
                .delete(delete_templates),
        )
}

/// Graph versions look like `v23.0`; returns the major number.
fn check_version(version: &str) -> Result<u32, GraphError> {
    let rest = version
        .strip_prefix('v')
        .ok_or_else(GraphError::unknown_path)?;
    let (major, minor) = rest.split_once('.').ok_or_else(GraphError::unknown_path)?;
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !numeric(major) || !numeric(minor) {
        return Err(GraphError::unknown_path());
    }
    major.parse().map_err(|_| GraphError::unknown_path())
}

/// The bearer token of a request (`Authorization: Bearer …` or `?access_token=`).
fn token(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default().trim();
        if (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
            && !rest.is_empty()
        {
            return Some(rest.to_owned());
        }
        return Some(String::new());
    }
    query.get("access_token").cloned()
}

/// The phone number id the token belongs to; 190 when absent or unknown.
fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<String, GraphError> {
    let Some(token) = token(headers, query) else {
        return Err(GraphError::token_missing());
    };
    if token.is_empty() {
        return Err(GraphError::token_missing());
    }
    lock(&state.inner)
        .tokens
        .get(&token)
        .cloned()
        .ok_or_else(GraphError::token_invalid)
}

fn ok(version: &str, status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(version) {
        resp.headers_mut().insert("facebook-api-version", v);
    }
    resp
}

fn parse_json(body: &Bytes) -> Result<Value, GraphError> {
    serde_json::from_slice(body).map_err(|_| {
        GraphError::invalid_parameter(
            "The request body must be a JSON object (Content-Type: application/json).",
        )
    })
}

/// Keeps `fields` (comma separated) of `full`, always with `id`; `defaults` when absent.
fn project(
    full: &Map<String, Value>,
    fields: Option<&String>,
    defaults: &[&str],
    node: &str,
) -> Result<Value, GraphError> {
    let wanted: Vec<String> = match fields {
        Some(f) => f
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => defaults.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut out = Map::new();
    for field in wanted {
        let Some(v) = full.get(&field) else {
            return Err(GraphError {
                http: StatusCode::BAD_REQUEST,
                code: 100,
                kind: "OAuthException",
                message: format!(
                    "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
                ),
                details: None,
            });
        };
        out.insert(field, v.clone());
    }
    if let Some(id) = full.get("id") {
        out.insert("id".into(), id.clone());
    }
    Ok(Value::Object(out))
}

fn phone_fields(phone: &Phone, throughput: u32) -> Map<String, Value> {
    let level = if throughput >= 1000 {
        "HIGH"
    } else {
        "STANDARD"
    };
    let v = json!({
        "id": phone.id,
        "display_phone_number": phone.display_phone_number,
        "verified_name": phone.verified_name,
        "quality_rating": "GREEN",
        "throughput": {"level": level},
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "name_status": "APPROVED",
        "status": "CONNECTED",
        "account_mode": "LIVE",
        "is_official_business_account": false,
        "whatsapp_business_manager_messaging_limit": "TIER_250",
        "messaging_limit_tier": "TIER_250",
    });
    v.as_object().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------- objects

async fn get_object(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    let cfg = st.cfg();
    enum Found {
        Phone(Phone),
        Waba(Phone),
        Media(Media),
        Template(Template, String),
    }
    let found = {
        let inner = lock(&st.inner);
        if let Some(p) = inner.phones.get(&id) {
            Some(Found::Phone(p.clone()))
        } else if let Some(p) = inner.wabas.get(&id).and_then(|p| inner.phones.get(p)) {
            Some(Found::Waba(p.clone()))
        } else if let Some(m) = inner.media.get(&id) {
            Some(Found::Media(m.clone()))
        } else {
            inner.templates.iter().find_map(|(waba, list)| {
                list.iter()
                    .find(|t| t.id == id)
                    .map(|t| Found::Template(t.clone(), waba.clone()))
            })
        }
    };
    let fields = q.get("fields");
    match found {
        None => Err(GraphError::unknown_object("get", &id)),
        Some(Found::Phone(phone)) => {
            if phone.id != owner {
                return Err(GraphError::permission());
            }
            let full = phone_fields(&phone, cfg.throughput_per_second);
            let defaults = [
                "verified_name",
                "code_verification_status",
                "display_phone_number",
                "quality_rating",
                "platform_type",
                "throughput",
            ];
            let body = project(&full, fields, &defaults, "WhatsAppBusinessPhoneNumber")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
        Some(Found::Waba(phone)) => {
            if phone.id != owner {
                return Err(GraphError::permission());
            }
            let full = json!({
                "id": phone.waba_id,
                "name": phone.verified_name,
                "currency": "USD",
                "timezone_id": "1",
                "message_template_namespace": format!("sim_{}", phone.waba_id),
                "account_review_status": "APPROVED",
            });
            let full = full.as_object().cloned().unwrap_or_default();
            let defaults = [
                "name",
                "currency",
                "timezone_id",
                "message_template_namespace",
            ];
            let body = project(&full, fields, &defaults, "WhatsAppBusinessAccount")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
        Some(Found::Media(media)) => {
            if media.phone_id != owner {
                return Err(GraphError::permission());
            }
            if q.get("phone_number_id")
                .is_some_and(|p| *p != media.phone_id)
            {
                return Err(GraphError::invalid_parameter(
                    "The media does not belong to phone_number_id.",
                ));
            }
            Ok(ok(
                &version,
                StatusCode::OK,
                json!({
                    "messaging_product": "whatsapp",
                    "url": st.media_url(&media.id),
                    "mime_type": media.mime_type,
                    "sha256": media.sha256_hex,
                    "file_size": media.bytes.len(),
                    "id": media.id,
                }),
            ))
        }
        Some(Found::Template(t, waba)) => {
            let allowed = lock(&st.inner).wabas.get(&waba) == Some(&owner);
            if !allowed {
                return Err(GraphError::permission());
            }
            let full = t.to_json().as_object().cloned().unwrap_or_default();
            let all: Vec<&str> = full.keys().map(String::as_str).collect();
            let body = project(&full, fields, &all, "WhatsAppMessageTemplate")?;
            Ok(ok(&version, StatusCode::OK, body))
        }
    }
}

/// `POST /{version}/{template_id}`: edit a template.
async fn post_object(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    let edit = parse_json(&body)?;
    let mut inner = lock(&st.inner);
    let owner_waba = inner
        .phones
        .get(&owner)
        .map(|p| p.waba_id.clone())
        .unwrap_or_default();
    let exists_elsewhere = inner
        .templates
        .iter()
        .any(|(w, l)| *w != owner_waba && l.iter().any(|t| t.id == id));
    let Some(t) = inner
        .templates
        .get_mut(&owner_waba)
        .and_then(|l| l.iter_mut().find(|t| t.id == id))
    else {
        if exists_elsewhere || inner.phones.contains_key(&id) {
            return Err(GraphError::permission());
        }
        return Err(GraphError::unknown_object("post", &id));
    };
    if !matches!(t.status.as_str(), "APPROVED" | "REJECTED" | "PAUSED") {
        return Err(GraphError::invalid_parameter(format!(
            "A template with status {} cannot be edited.",
            t.status
        )));
    }
    if let Some(category) = edit.get("category").and_then(Value::as_str) {
        let category = category.to_ascii_uppercase();
        if !matches!(
            category.as_str(),
            "AUTHENTICATION" | "MARKETING" | "UTILITY"
        ) {
            return Err(GraphError::invalid_parameter("Param category is invalid."));
        }
        if t.status == "APPROVED" && category != t.category {
            return Err(GraphError::invalid_parameter(
                "The category of an approved template cannot be changed.",
            ));
        }
        t.category = category;
    }
    if let Some(components) = edit.get("components") {
        check_components(components, &t.parameter_format)?;
        t.components = normalize_components(components);
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

/// `DELETE /{version}/{media_id}`.
async fn delete_object(
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

/// Auth + the phone number named in the path, which the token must own.
fn own_phone(
    st: &AppState,
    version: &str,
    id: &str,
    method: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(u32, Phone), GraphError> {
    let major = check_version(version)?;
    let owner = authenticate(st, headers, q)?;
    let phone = st
        .phone(id)
        .ok_or_else(|| GraphError::unknown_object(method, id))?;
    if phone.id != owner {
        return Err(GraphError::permission());
    }
    Ok((major, phone))
}

/// `GET /{version}/{waba_id}/phone_numbers`: the WABA's (single) number.
async fn list_phone_numbers(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "get")?;
    let phone = st
        .phone(&owner)
        .ok_or_else(|| GraphError::unknown_object("get", &waba))?;
    let full = phone_fields(&phone, st.cfg().throughput_per_second);
    let defaults = [
        "verified_name",
        "code_verification_status",
        "display_phone_number",
        "quality_rating",
        "platform_type",
        "throughput",
    ];
    let item = project(
        &full,
        q.get("fields"),
        &defaults,
        "WhatsAppBusinessPhoneNumber",
    )?;
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"data": [item], "paging": {"cursors": {"before": cursor(0), "after": cursor(0)}}}),
    ))
}

/// `GET /{version}/{waba_id}/subscribed_apps`.
async fn subscribed_apps(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "get")?;
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"data": [{"whatsapp_business_api_data": {"id": "1", "name": "Palisade Sim App"}}]}),
    ))
}

/// `POST /{version}/{waba_id}/subscribed_apps` (webhooks themselves are routed by the control
/// API's subscribe call).
async fn subscribe_app(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "post")?;
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

/// `POST /{version}/{phone_number_id}/register {messaging_product, pin}`.
async fn register(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    own_phone(&st, &version, &id, "post", &headers, &q)?;
    let b = parse_json(&body)?;
    if b.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err(GraphError::invalid_parameter(
            "Param messaging_product must be 'whatsapp'.",
        ));
    }
    let pin_ok = b
        .get("pin")
        .and_then(Value::as_str)
        .is_some_and(|p| p.len() == 6 && p.chars().all(|c| c.is_ascii_digit()));
    if !pin_ok {
        return Err(GraphError::invalid_parameter(
            "Param pin must be a 6-digit string.",
        ));
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

// ---------------------------------------------------------------- messages

async fn send(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    let (major, phone) = own_phone(&st, &version, &id, "post", &headers, &q)?;
    let body = parse_json(&body)?;
    let s = match validate::validate(&body)? {
        Request::MarkRead { message_id } => {
            let known = lock(&st.inner)
                .inbound_ids
                .contains(&(phone.id.clone(), message_id.clone()));
            if !known {
                return Err(GraphError::invalid_parameter(format!(
                    "Param message_id '{message_id}' is not a message received by this number."
                )));
            }
            return Ok(ok(&version, StatusCode::OK, json!({"success": true})));
        }
        Request::Send(s) => s,
    };
    let cfg = st.cfg();
    let (wamid, fail_window) = {
        let mut inner = lock(&st.inner);
        if let Some(media_id) = body
            .get(&s.kind)
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
        {
            let usable = inner
                .media
                .get(media_id)
                .is_some_and(|m| m.phone_id == phone.id);
            if !usable {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {}['id'] '{media_id}' is not a valid media id of this number.",
                    s.kind
                )));
            }
        }
        let template = if s.kind == "template" {
            let list = inner
                .templates
                .get(&phone.waba_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Some(validate::check_template(list, &body)?)
        } else {
            None
        };
        AppState::take_throughput(&mut inner, &phone.id, cfg.throughput_per_second, true)?;
        AppState::take_pair(
            &mut inner,
            &phone.id,
            &s.wa_id,
            cfg.pair_burst,
            cfg.pair_interval_ms,
        )?;
        let in_window = AppState::window_open(&inner, &phone.id, &s.wa_id, cfg.window_ms);
        let mut fail_window = false;
        if template.is_none() && !in_window {
            if cfg.accept_then_fail {
                fail_window = true;
            } else {
                return Err(GraphError::window_closed());
            }
        }
        let (category, free) = match &template {
            Some(t) => {
                let category = t.category.to_ascii_lowercase();
                let free = category == "utility" && in_window;
                (category, free)
            }
            None => ("service".to_owned(), true),
        };
        let wamid = ids::wamid(&s.wa_id);
        let list = inner.outbound.entry(phone.id.clone()).or_default();
        list.push(Outbound {
            wamid: wamid.clone(),
            to: s.wa_id.clone(),
            kind: s.kind.clone(),
            body: body.clone(),
            status: "accepted".into(),
            version: major,
            category,
            free,
            billed_after_sent: false,
        });
        let idx = list.len().saturating_sub(1);
        inner
            .outbound_index
            .insert(wamid.clone(), (phone.id.clone(), idx));
        (wamid, fail_window)
    };
    if fail_window {
        let errors = json!([GraphError::webhook_item(
            131047,
            WINDOW_TITLE,
            WINDOW_DETAILS
        )]);
        webhook::spawn_failure(&st, wamid.clone(), errors);
    } else if cfg.auto_status {
        webhook::spawn_progression(&st, wamid.clone());
    }
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": s.input, "wa_id": s.wa_id}],
            "messages": [{"id": wamid}],
        }),
    ))
}

// ---------------------------------------------------------------- media

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

async fn upload(
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

async fn download(State(st): St, Query(q): Q, headers: HeaderMap) -> Response {
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

// ---------------------------------------------------------------- templates

fn waba_owner(st: &AppState, waba: &str, owner: &str, method: &str) -> Result<(), GraphError> {
    let inner = lock(&st.inner);
    match inner.wabas.get(waba) {
        None => Err(GraphError::unknown_object(method, waba)),
        Some(p) if p != owner => Err(GraphError::permission()),
        Some(_) => Ok(()),
    }
}

fn cursor(i: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sim-cursor-{i}"))
}

fn parse_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("sim-cursor-")?
        .parse()
        .ok()
}

async fn list_templates(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "get")?;
    let all: Vec<Template> = lock(&st.inner)
        .templates
        .get(&waba)
        .cloned()
        .unwrap_or_default();
    let filtered: Vec<Template> = all
        .into_iter()
        .filter(|t| q.get("name").is_none_or(|n| t.name.contains(n.as_str())))
        .filter(|t| {
            q.get("status")
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .filter(|t| {
            q.get("category")
                .is_none_or(|c| t.category.eq_ignore_ascii_case(c))
        })
        .filter(|t| q.get("language").is_none_or(|l| t.language == *l))
        .collect();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let (start, end) = if let Some(after) = q.get("after").and_then(|c| parse_cursor(c)) {
        let start = after.saturating_add(1).min(filtered.len());
        (start, start.saturating_add(limit).min(filtered.len()))
    } else if let Some(before) = q.get("before").and_then(|c| parse_cursor(c)) {
        let end = before.min(filtered.len());
        (end.saturating_sub(limit), end)
    } else {
        (0, limit.min(filtered.len()))
    };
    let page = filtered.get(start..end).unwrap_or_default();
    let defaults = [
        "name",
        "parameter_format",
        "components",
        "language",
        "status",
        "category",
    ];
    let data = page
        .iter()
        .map(|t| {
            let full = t.to_json().as_object().cloned().unwrap_or_default();
            project(&full, q.get("fields"), &defaults, "WhatsAppMessageTemplate")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({"data": data});
    if !page.is_empty() {
        let link = |cursor_key: &str, c: String| {
            let mut params: Vec<String> = q
                .iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "after" | "before" | "access_token" | "limit")
                })
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            params.sort();
            params.push(format!("limit={limit}"));
            params.push(format!("{cursor_key}={c}"));
            format!(
                "{}/{version}/{waba}/message_templates?{}",
                st.base_url,
                params.join("&")
            )
        };
        let mut paging = json!({
            "cursors": {"before": cursor(start), "after": cursor(end.saturating_sub(1))}
        });
        if let Some(p) = paging.as_object_mut() {
            if end < filtered.len() {
                p.insert(
                    "next".into(),
                    json!(link("after", cursor(end.saturating_sub(1)))),
                );
            }
            if start > 0 {
                p.insert("previous".into(), json!(link("before", cursor(start))));
            }
        }
        if let Some(b) = body.as_object_mut() {
            b.insert("paging".into(), paging);
        }
    }
    Ok(ok(&version, StatusCode::OK, body))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters and `,` kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Uppercases component `type`/`format`/button `type`, as GET responses show them.
fn normalize_components(components: &Value) -> Value {
    let mut out = components.clone();
    if let Some(list) = out.as_array_mut() {
        for c in list.iter_mut() {
            if let Some(obj) = c.as_object_mut() {
                for key in ["type", "format"] {
                    if let Some(Value::String(s)) = obj.get_mut(key) {
                        *s = s.to_ascii_uppercase();
                    }
                }
                if let Some(Value::Array(buttons)) = obj.get_mut("buttons") {
                    for b in buttons.iter_mut() {
                        if let Some(Value::String(s)) = b.get_mut("type") {
                            *s = s.to_ascii_uppercase();
                        }
                    }
                }
            }
        }
    }
    out
}

fn check_components(components: &Value, parameter_format: &str) -> Result<(), GraphError> {
    let list = components
        .as_array()
        .ok_or_else(|| GraphError::invalid_parameter("Param components must be an array."))?;
    let is = |c: &Value, kind: &str| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    };
    let body = list
        .iter()
        .find(|c| is(c, "body"))
        .ok_or_else(|| GraphError::invalid_parameter("A template needs a BODY component."))?;
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            GraphError::invalid_parameter("Param components[BODY]['text'] is required.")
        })?;
    if text.chars().count() > 1024 {
        return Err(GraphError::invalid_parameter(
            "The BODY text is longer than 1024 characters.",
        ));
    }
    for c in list.iter().filter(|c| is(c, "body") || is(c, "header")) {
        let vars = validate::variables(c.get("text").and_then(Value::as_str).unwrap_or_default());
        if vars.is_empty() {
            continue;
        }
        let positional = !parameter_format.eq_ignore_ascii_case("NAMED");
        if positional && vars.iter().any(|v| v.parse::<u32>().is_err()) {
            return Err(GraphError::invalid_parameter(
                "Positional templates use {{1}}, {{2}}, … as variables.",
            ));
        }
        if c.get("example").is_none() {
            return Err(GraphError::invalid_parameter(
                "Every variable needs an example value (component example is missing).",
            ));
        }
    }
    Ok(())
}

async fn create_template(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "post")?;
    let b = parse_json(&body)?;
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid_parameter("The parameter name is required."))?;
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(GraphError::invalid_parameter(
            "Param name must be at most 512 lowercase alphanumeric characters or underscores.",
        ));
    }
    let language = b
        .get("language")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| GraphError::invalid_parameter("The parameter language is required."))?;
    let category = b
        .get("category")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| GraphError::invalid_parameter("The parameter category is required."))?;
    if !matches!(
        category.as_str(),
        "AUTHENTICATION" | "MARKETING" | "UTILITY"
    ) {
        return Err(GraphError::invalid_parameter(
            "Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}.",
        ));
    }
    let parameter_format = b
        .get("parameter_format")
        .and_then(Value::as_str)
        .unwrap_or("positional")
        .to_ascii_uppercase();
    if !matches!(parameter_format.as_str(), "POSITIONAL" | "NAMED") {
        return Err(GraphError::invalid_parameter(
            "Param parameter_format must be one of {named, positional}.",
        ));
    }
    let components = b
        .get("components")
        .ok_or_else(|| GraphError::invalid_parameter("The parameter components is required."))?;
    check_components(components, &parameter_format)?;
    let template = Template {
        id: ids::numeric_id(),
        name: name.to_owned(),
        language: language.to_owned(),
        status: "PENDING".into(),
        category: category.clone(),
        parameter_format,
        components: normalize_components(components),
    };
    let id = template.id.clone();
    {
        let mut inner = lock(&st.inner);
        let list = inner.templates.entry(waba.clone()).or_default();
        if list
            .iter()
            .any(|t| t.name == name && t.language == language)
        {
            return Err(GraphError::invalid_parameter(format!(
                "Message template \"{name}\" already exists in language {language}."
            )));
        }
        if list.len() >= 250 {
            return Err(GraphError {
                http: StatusCode::BAD_REQUEST,
                code: 100,
                kind: "OAuthException",
                message: "(#100) Invalid parameter".into(),
                details: Some("Message template limit (250) reached for this WABA.".into()),
            });
        }
        list.push(template);
    }
    webhook::spawn_template_review(&st, id.clone());
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"id": id, "status": "PENDING", "category": category}),
    ))
}

async fn delete_templates(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    waba_owner(&st, &waba, &owner, "delete")?;
    let Some(name) = q.get("name") else {
        return Err(GraphError::invalid_parameter(
            "The parameter name is required.",
        ));
    };
    let hsm_id = q.get("hsm_id");
    let mut inner = lock(&st.inner);
    let list = inner.templates.entry(waba).or_default();
    let before = list.len();
    list.retain(|t| !(t.name == *name && hsm_id.is_none_or(|h| *h == t.id)));
    if list.len() == before {
        return Err(GraphError::invalid_parameter(format!(
            "Message template \"{name}\" was not found."
        )));
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

/// The templates every simulated WABA starts with.
pub fn seed_templates() -> Vec<Template> {
    vec![
        Template {
            id: ids::numeric_id(),
            name: "hello_world".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}
            ]),
        },
        Template {
            id: ids::numeric_id(),
            name: "order_confirmation".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is confirmed.",
                 "example": {"body_text": [["Jessica", "SKBUP2-4CPIG9"]]}}
            ]),
        },
    ]
}
