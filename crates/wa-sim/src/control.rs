//! The control API under `/_sim` (no auth): create numbers, subscribe webhooks, inject customer
//! messages, inspect outbound messages and webhook deliveries, force statuses, change fault modes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::ConfigPatch;
use crate::error::GraphError;
use crate::graph::{new_media, seed_templates, sha256_b64};
use crate::ids;
use crate::state::{lock, AppState, Phone, Subscription};
use crate::webhook;

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_sim/phone-numbers", post(create_phone).get(list_phones))
        .route(
            "/_sim/phone-numbers/{id}/subscribe",
            post(subscribe).delete(unsubscribe),
        )
        .route("/_sim/phone-numbers/{id}/outbound", get(outbound))
        .route(
            "/_sim/phone-numbers/{id}/outbound/{wamid}/status",
            post(force_status),
        )
        .route("/_sim/inbound", post(inbound))
        .route("/_sim/deliveries", get(deliveries).delete(clear_deliveries))
        .route("/_sim/config", get(get_config).post(set_config))
        .route("/_sim/templates/{id}/status", post(template_status))
        .route("/_sim/templates/{id}/quality", post(template_quality))
        .route("/_sim/templates/{id}/category", post(template_category))
        .route(
            "/_sim/recipients/{wa_id}/refuse",
            post(refuse_recipient).delete(accept_recipient),
        )
}

/// A control API error: `{"error": "<message>"}`.
pub struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(what: &str, id: &str) -> ControlError {
    ControlError(StatusCode::NOT_FOUND, format!("unknown {what} {id}"))
}

/// Parses an optional JSON body (empty → `T::default()`).
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> Result<T, ControlError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn phone_json(p: &Phone) -> Value {
    json!({
        "phone_number_id": p.id,
        "waba_id": p.waba_id,
        "access_token": p.access_token,
        "app_secret": p.app_secret,
        "display_phone_number": p.display_phone_number,
        "verified_name": p.verified_name,
        "callback_url": p.subscription.as_ref().map(|s| s.callback_url.clone()),
        "verify_token": p.subscription.as_ref().map(|s| s.verify_token.clone()),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPhone {
    display_phone_number: Option<String>,
    verified_name: Option<String>,
}

async fn create_phone(State(st): St, raw: Bytes) -> Result<Response, ControlError> {
    let req: NewPhone = body(&raw)?;
    let display = match req.display_phone_number {
        Some(d) => {
            let digits = ids::digits(&d);
            if digits.len() < 5 || digits.len() > 15 {
                return Err(bad("display_phone_number must hold 5 to 15 digits"));
            }
            digits
        }
        None => format!("1555{}", &ids::numeric_id().get(..7).unwrap_or("0000000")),
    };
    let phone = Phone {
        id: ids::numeric_id(),
        waba_id: ids::numeric_id(),
        access_token: ids::access_token(),
        app_secret: ids::app_secret(),
        display_phone_number: display,
        verified_name: req.verified_name.unwrap_or_else(|| "Palisade Sim".into()),
        subscription: None,
    };
    {
        let mut inner = lock(&st.inner);
        inner
            .tokens
            .insert(phone.access_token.clone(), phone.id.clone());
        inner.wabas.insert(phone.waba_id.clone(), phone.id.clone());
        inner
            .templates
            .insert(phone.waba_id.clone(), seed_templates());
        inner.phones.insert(phone.id.clone(), phone.clone());
    }
    Ok((StatusCode::CREATED, Json(phone_json(&phone))).into_response())
}

async fn list_phones(State(st): St) -> Json<Value> {
    let inner = lock(&st.inner);
    let mut phones: Vec<&Phone> = inner.phones.values().collect();
    phones.sort_by(|a, b| a.id.cmp(&b.id));
    Json(Value::Array(phones.into_iter().map(phone_json).collect()))
}

#[derive(Debug, Default, Deserialize)]
struct SubscribeReq {
    callback_url: Option<String>,
    verify_token: Option<String>,
}

async fn subscribe(
    State(st): St,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: SubscribeReq = body(&raw)?;
    if st.phone(&id).is_none() {
        return Err(not_found("phone number", &id));
    }
    let Some(callback_url) = req.callback_url.filter(|u| !u.is_empty()) else {
        return Err(bad("callback_url is required"));
    };
    if !(callback_url.starts_with("http://") || callback_url.starts_with("https://")) {
        return Err(bad("callback_url must be an http(s) URL"));
    }
    let verify_token = req.verify_token.unwrap_or_default();
    if let Err(msg) = webhook::handshake(&st, &callback_url, &verify_token).await {
        return Err(ControlError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("webhook verification failed: {msg}"),
        ));
    }
    let mut inner = lock(&st.inner);
    let Some(phone) = inner.phones.get_mut(&id) else {
        return Err(not_found("phone number", &id));
    };
    phone.subscription = Some(Subscription {
        callback_url: callback_url.clone(),
        verify_token,
    });
    Ok(Json(json!({
        "phone_number_id": id,
        "callback_url": callback_url,
        "verified": true,
    }))
    .into_response())
}

async fn unsubscribe(State(st): St, Path(id): Path<String>) -> Result<Response, ControlError> {
    let mut inner = lock(&st.inner);
    let Some(phone) = inner.phones.get_mut(&id) else {
        return Err(not_found("phone number", &id));
    };
    phone.subscription = None;
    Ok(StatusCode::NO_CONTENT.into_response())
}

const MEDIA_KINDS: [(&str, &str); 5] = [
    ("image", "image/jpeg"),
    ("video", "video/mp4"),
    ("audio", "audio/ogg; codecs=opus"),
    ("document", "application/pdf"),
    ("sticker", "image/webp"),
];

/// `POST /_sim/inbound`: a customer message, delivered by webhook; opens the 24 h window.
async fn inbound(State(st): St, raw: Bytes) -> Result<Response, ControlError> {
    let req: Map<String, Value> = body(&raw)?;
    let get_str = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
    let phone_id = get_str("phone_number_id").ok_or_else(|| bad("phone_number_id is required"))?;
    let phone = st
        .phone(&phone_id)
        .ok_or_else(|| not_found("phone number", &phone_id))?;
    let from = ids::digits(&get_str("from").ok_or_else(|| bad("from is required"))?);
    if from.len() < 5 || from.len() > 15 {
        return Err(bad("from must hold 5 to 15 digits"));
    }
    let kind = get_str("type").unwrap_or_else(|| "text".into());
    let profile_name = get_str("profile_name").unwrap_or_else(|| "Sim Customer".into());
    let timestamp = match req.get("timestamp") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => ids::unix_now().to_string(),
    };
    let wamid = ids::wamid(&from);
    let cfg = st.cfg();

    let mut msg = Map::new();
    if let Some(ctx) = req.get("context") {
        let mut ctx = ctx
            .as_object()
            .cloned()
            .ok_or_else(|| bad("context must be an object"))?;
        if let Some(id) = ctx.remove("message_id") {
            ctx.insert("id".into(), id);
        }
        if ctx.contains_key("id") && !ctx.contains_key("from") {
            ctx.insert("from".into(), json!(phone.display_phone_number));
        }
        msg.insert("context".into(), Value::Object(ctx));
    }
    msg.insert("from".into(), json!(from));
    msg.insert("id".into(), json!(wamid));
    msg.insert("timestamp".into(), json!(timestamp));
    msg.insert("type".into(), json!(kind));

    let mut new_media_items = Vec::new();
    if kind == "unsupported" {
        msg.insert(
            "errors".into(),
            json!([{
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."}
            }]),
        );
        let inner_kind = req
            .get("unsupported")
            .cloned()
            .unwrap_or_else(|| json!({"type": "unknown"}));
        msg.insert("unsupported".into(), inner_kind);
    } else if let Some((_, default_mime)) = MEDIA_KINDS.iter().find(|(k, _)| *k == kind) {
        let mut m = req
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| json!({}))
            .as_object()
            .cloned()
            .ok_or_else(|| bad(format!("{kind} must be an object")))?;
        let data = match m.remove("data_base64") {
            Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| bad(format!("{kind}.data_base64 is not base64: {e}")))?,
            Some(_) => return Err(bad(format!("{kind}.data_base64 must be a string"))),
            None => format!("palisade-wa-sim {kind} placeholder").into_bytes(),
        };
        let existing = m
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| lock(&st.inner).media.get(id).cloned());
        let media = match existing {
            Some(media) => media,
            None => {
                let mime = m
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .unwrap_or(default_mime)
                    .to_owned();
                let media = new_media(&phone.id, &mime, Bytes::from(data));
                new_media_items.push(media.clone());
                media
            }
        };
        m.insert("id".into(), json!(media.id));
        m.entry("mime_type").or_insert(json!(media.mime_type));
        m.insert("sha256".into(), json!(sha256_b64(&media.bytes)));
        m.insert("url".into(), json!(st.media_url(&media.id)));
        if kind == "audio" {
            m.entry("voice").or_insert(json!(false));
        }
        if kind == "sticker" {
            m.entry("animated").or_insert(json!(false));
        }
        msg.insert(kind.clone(), Value::Object(m));
    } else {
        let content = req
            .get(&kind)
            .cloned()
            .ok_or_else(|| bad(format!("type {kind} needs a field named {kind}")))?;
        msg.insert(kind.clone(), content);
    }
    for extra in ["referral", "errors"] {
        if let Some(v) = req.get(extra) {
            msg.entry(extra).or_insert(v.clone());
        }
    }

    {
        let mut inner = lock(&st.inner);
        for media in new_media_items {
            inner.media.insert(media.id.clone(), media);
        }
        inner
            .windows
            .insert((phone.id.clone(), from.clone()), Instant::now());
        inner.inbound_ids.insert((phone.id.clone(), wamid.clone()));
        // Inbound traffic counts toward the number's throughput but is never refused.
        let _ = AppState::take_throughput(&mut inner, &phone.id, cfg.throughput_per_second, false);
    }

    let message = Value::Object(msg);
    let mut value = AppState::value_head(&phone);
    value.insert(
        "contacts".into(),
        json!([{"profile": {"name": profile_name}, "wa_id": from}]),
    );
    value.insert("messages".into(), json!([message.clone()]));
    st.emit(&phone.id, "messages", Value::Object(value));
    Ok((
        StatusCode::CREATED,
        Json(json!({"wamid": wamid, "message": message})),
    )
        .into_response())
}

async fn outbound(State(st): St, Path(id): Path<String>) -> Result<Response, ControlError> {
    let inner = lock(&st.inner);
    if !inner.phones.contains_key(&id) {
        return Err(not_found("phone number", &id));
    }
    let list: Vec<Value> = inner
        .outbound
        .get(&id)
        .map(|v| {
            v.iter()
                .map(|o| {
                    json!({
                        "wamid": o.wamid,
                        "to": o.to,
                        "type": o.kind,
                        "body": o.body,
                        "status": o.status,
                        "at_ms": o.at_ms,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(Value::Array(list)).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ForceStatus {
    status: Option<String>,
    error: Option<Value>,
}

fn error_item(v: &Value) -> Result<Value, ControlError> {
    let (code, title, details) = match v {
        Value::Number(n) => (n.as_u64(), None, None),
        Value::Object(o) => (
            o.get("code").and_then(Value::as_u64),
            o.get("title")
                .or_else(|| o.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            o.get("details").and_then(Value::as_str).map(str::to_owned),
        ),
        _ => (None, None, None),
    };
    let code = code
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| bad("error must be a code or {code, title?, details?}"))?;
    let title = title.unwrap_or_else(|| default_title(code).to_owned());
    let details = details.unwrap_or_else(|| title.clone());
    Ok(GraphError::webhook_item(code, &title, &details))
}

fn default_title(code: u32) -> &'static str {
    match code {
        131047 => "Re-engagement message",
        131026 => "Message undeliverable",
        131049 => "This message was not delivered to maintain healthy ecosystem engagement.",
        131050 => "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
        131053 => "Media upload error",
        131052 => "Media download error",
        130472 => "User's number is part of an experiment",
        _ => "Message failed to send due to an unknown error.",
    }
}

async fn force_status(
    State(st): St,
    Path((id, wamid)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: ForceStatus = body(&raw)?;
    let status = req.status.ok_or_else(|| bad("status is required"))?;
    if !matches!(
        status.as_str(),
        "sent" | "delivered" | "read" | "failed" | "played"
    ) {
        return Err(bad(
            "status must be one of sent, delivered, read, failed, played",
        ));
    }
    let belongs = lock(&st.inner)
        .outbound_index
        .get(&wamid)
        .is_some_and(|(p, _)| *p == id);
    if !belongs {
        return Err(not_found("outbound message", &wamid));
    }
    let errors = match (&req.error, status.as_str()) {
        (Some(e), _) => Some(Value::Array(vec![error_item(e)?])),
        (None, "failed") => Some(Value::Array(vec![error_item(&json!(131000))?])),
        (None, _) => None,
    };
    let item = st
        .emit_status(&wamid, &status, errors)
        .ok_or_else(|| not_found("outbound message", &wamid))?;
    Ok(Json(json!({"status": item})).into_response())
}

async fn deliveries(State(st): St, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let log = lock(&st.deliveries);
    let items: Vec<Value> = log
        .iter()
        .filter(|d| {
            q.get("phone_number_id")
                .is_none_or(|p| *p == d.phone_number_id)
        })
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect();
    Json(Value::Array(items))
}

async fn clear_deliveries(State(st): St) -> StatusCode {
    lock(&st.deliveries).clear();
    StatusCode::NO_CONTENT
}

fn config_json(st: &AppState) -> Value {
    let mut v = serde_json::to_value(st.cfg()).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("listen");
        o.remove("seed");
        o.remove("public_base_url");
        o.insert(
            "media_downloads_waiting".into(),
            json!(st
                .media_downloads_waiting
                .load(std::sync::atomic::Ordering::SeqCst)),
        );
        o.insert(
            "send_answers_waiting".into(),
            json!(st
                .send_answers_waiting
                .load(std::sync::atomic::Ordering::SeqCst)),
        );
    }
    v
}

async fn get_config(State(st): St) -> Json<Value> {
    Json(config_json(&st))
}

async fn set_config(State(st): St, raw: Bytes) -> Result<Json<Value>, ControlError> {
    let patch: ConfigPatch = body(&raw)?;
    lock(&st.config).apply(&patch);
    Ok(Json(config_json(&st)))
}

#[derive(Debug, Default, Deserialize)]
struct TemplateStatus {
    status: Option<String>,
    reason: Option<String>,
}

async fn template_status(
    State(st): St,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: TemplateStatus = body(&raw)?;
    let status = req
        .status
        .ok_or_else(|| bad("status is required"))?
        .to_ascii_uppercase();
    let reason = req.reason.unwrap_or_else(|| "NONE".into());
    if !webhook::set_template_status(&st, &id, &status, &reason) {
        return Err(not_found("template", &id));
    }
    Ok(Json(json!({"id": id, "status": status})).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct TemplateQuality {
    score: Option<String>,
}

async fn template_quality(
    State(st): St,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: TemplateQuality = body(&raw)?;
    let score = req
        .score
        .ok_or_else(|| bad("score is required"))?
        .to_ascii_uppercase();
    if !webhook::set_template_quality(&st, &id, &score) {
        return Err(not_found("template", &id));
    }
    Ok(Json(json!({"id": id, "quality_score": score})).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct TemplateCategory {
    category: Option<String>,
}

async fn template_category(
    State(st): St,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: TemplateCategory = body(&raw)?;
    let category = req
        .category
        .ok_or_else(|| bad("category is required"))?
        .to_ascii_uppercase();
    if !webhook::set_template_category(&st, &id, &category) {
        return Err(not_found("template", &id));
    }
    Ok(Json(json!({"id": id, "category": category})).into_response())
}

#[derive(Deserialize, Default)]
struct Refusal {
    code: Option<u32>,
}

/// From now on, template sends to `wa_id` fail synchronously with `code` (131049 or 131050).
async fn refuse_recipient(
    State(st): St,
    Path(wa_id): Path<String>,
    raw: Bytes,
) -> Result<Response, ControlError> {
    let req: Refusal = body(&raw)?;
    let code = req.code.ok_or_else(|| bad("code is required"))?;
    if code != 131_049 && code != 131_050 {
        return Err(bad("code must be 131049 or 131050"));
    }
    let wa_id: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    lock(&st.inner).refusals.insert(wa_id.clone(), code);
    Ok(Json(json!({"wa_id": wa_id, "code": code})).into_response())
}

/// Template sends to `wa_id` are accepted again.
async fn accept_recipient(State(st): St, Path(wa_id): Path<String>) -> Response {
    let wa_id: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    lock(&st.inner).refusals.remove(&wa_id);
    StatusCode::NO_CONTENT.into_response()
}
