//! The Graph API surface: `/{version}/…` routes and the media download URL.
//!
//! This module holds the route table and what every handler shares: version check, bearer
//! authentication, the `facebook-api-version` response, `fields=` projection and list cursors.
//! The handlers live in one file per part of the API a CRM calls, so a change to templates never
//! means reading the send path:
//!
//! * [`objects`]: `GET /{id}`, whichever node the id names (number, WABA, media, template);
//! * [`onboarding`]: the calls made while connecting a number (phone numbers, subscribed apps,
//!   register);
//! * [`messages`]: `POST /{phone_number_id}/messages`, where the window and rate limits apply;
//! * [`media`]: upload, delete and the expiring download URL;
//! * [`templates`]: list, create, edit and delete message templates, and the seeded ones.

mod media;
mod messages;
mod objects;
mod onboarding;
mod templates;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::state::{lock, AppState, Phone};

pub use media::{new_media, sha256_b64};
pub use templates::seed_templates;

type St = State<Arc<AppState>>;
type Q = Query<HashMap<String, String>>;
type GResult = Result<Response, GraphError>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/whatsapp_business/attachments/", get(media::download))
        .route("/whatsapp_business/attachments", get(media::download))
        .route(
            "/{version}/{id}",
            get(objects::get_object)
                .post(templates::edit_template)
                .delete(media::delete_media),
        )
        .route("/{version}/{id}/messages", post(messages::send))
        .route(
            "/{version}/{id}/media",
            post(media::upload).layer(DefaultBodyLimit::max(101 * 1024 * 1024)),
        )
        .route(
            "/{version}/{id}/phone_numbers",
            get(onboarding::list_phone_numbers),
        )
        .route(
            "/{version}/{id}/subscribed_apps",
            get(onboarding::subscribed_apps).post(onboarding::subscribe_app),
        )
        .route("/{version}/{id}/register", post(onboarding::register))
        .route(
            "/{version}/{id}/message_templates",
            get(templates::list_templates)
                .post(templates::create_template)
                .delete(templates::delete_templates),
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

/// A request on the WABA named in the path: a known version, a token, and the WABA must belong
/// to the token's number. Returns the token's number (the owner).
fn own_waba(
    st: &AppState,
    version: &str,
    waba: &str,
    method: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<String, GraphError> {
    check_version(version)?;
    let owner = authenticate(st, headers, q)?;
    let inner = lock(&st.inner);
    match inner.wabas.get(waba) {
        None => Err(GraphError::unknown_object(method, waba)),
        Some(p) if *p != owner => Err(GraphError::permission()),
        Some(_) => Ok(owner),
    }
}

/// An opaque list cursor (the item's index), shaped like Meta's base64 cursors.
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
