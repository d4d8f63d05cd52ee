//! `GET /api/v1/ws`: the realtime websocket (protocol, close codes and every event in
//! `docs/realtime.md`).
//!
//! Threat: a socket that outlives its credential, hears another tenant, or is opened by a
//! hostile page riding a browser's cookies. Invariants:
//! - Credentials never travel in the URL: a `token`-like query parameter is refused (400
//!   `token_in_url`) before anything else. A socket authenticates with the session cookie, an
//!   `Authorization: Bearer` header, or a first message `{"type":"auth","token":…}` within
//!   [`AUTH_TIMEOUT`], answered `{"type":"ready"}`.
//! - A cookie-authenticated upgrade must come from our own origin (the `Origin` of a browser
//!   handshake is the page's; browsers send cookies on cross-site websocket handshakes and CORS
//!   does not apply to them), else 403 `origin_not_allowed`.
//! - The tenant comes from the verified credential (`realtime::authorize`); the socket
//!   subscribes to that tenant only. The credential is re-checked every second against the
//!   auth cache (fed by the revocation feed of every node), so a revoked session or key, an
//!   expired token, a deleted user or a suspended tenant closes the socket within about a
//!   second (4401 / 4403 with the error code as reason).
//!
//! - One user (or one API key) holds at most `PALISADE_WS_MAX_PER_USER` open sockets per node:
//!   a handshake carrying a credential beyond that gets `429 too_many_websockets`; a socket
//!   authenticating by first message is closed with 4429 (same reason).
//! - An API key's socket counts as one use of the key (`total_requests`) when it opens; the
//!   per-second re-checks do not count. A socket opened under an impersonation writes one
//!   audit record (both identities) when it is authorised, not one per handshake and message.
//!
//! Each socket is one task with small buffers (4 KiB read buffer, no write buffer), so idle
//! sockets cost a few KiB each.
//!
//! In parts: this file is the handshake (credential checks before the upgrade, origin, socket
//! budget); [`socket`] is the life of one socket after it (authorise, relay, re-check,
//! keepalive); [`frames`] is what travels on it (client messages, error frames, close reasons).

mod frames;
mod socket;

use crate::cookies;
use crate::error::{render, ErrorBody};
use crate::middleware::{bearer, current_request_id, AuthOutcome, ClientIp};
use crate::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use palisade_core::auth::{KeyUse, RequestMeta};
use palisade_core::error::code;
use palisade_core::realtime::{SocketCredential, SocketOwner};
use serde::Serialize;
use serde_json::Value;
use socket::{run, Opening};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long an unauthenticated socket may take to send its `auth` message.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the credential is re-checked (and the keepalive clock ticks).
const TICK: Duration = Duration::from_secs(1);
/// A WebSocket ping every this many ticks…
const PING_TICKS: u32 = 30;
/// …and the socket is closed when nothing at all was heard for this many.
const IDLE_TICKS: u32 = 90;
/// A client that does not take a frame within this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Events relayed to a socket with one flush, at most.
const RELAY_BATCH: usize = 64;
/// Client messages are small (an auth message is under 2 KiB).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// Close codes (also in docs/realtime.md).
pub mod close {
    /// Missing, invalid, expired or revoked credential (reason: the error code).
    pub const UNAUTHENTICATED: u16 = 4401;
    /// Authenticated but not allowed: suspended tenant, missing permission or scope.
    pub const FORBIDDEN: u16 = 4403;
    /// The server is shutting down, or the client went silent.
    pub const GOING_AWAY: u16 = 1001;
    /// The server failed (reason: `internal_error`); reconnect later.
    pub const INTERNAL: u16 = 1011;
    /// The user or API key already holds `PALISADE_WS_MAX_PER_USER` sockets (reason
    /// `too_many_websockets`); close one first.
    pub const TOO_MANY: u16 = 4429;
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ws))
}

/// A frame the server sends: `{"type", "data"?}`. Event types: `message.created`,
/// `message.status`, `conversation.updated`; protocol types: `ready`, `pong`, `lagged`,
/// `error`. `data` of an event is the object exactly as the REST API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RealtimeFrame {
    /// `message.created`, `message.status`, `conversation.updated`, `ready`, `pong`,
    /// `lagged` or `error`.
    pub r#type: String,
    /// A `MessageResponse` (message events), a `ConversationResponse`
    /// (`conversation.updated`), `{missed}` (`lagged`) or `{code, message}` (`error`).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// Names under which clients put credentials in URLs; refused by name so the answer says why.
const CREDENTIAL_PARAMS: [&str; 7] = [
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "jwt",
    "authorization",
];

/// Opens the realtime websocket. Authenticate with the session cookie (same origin only), an
/// `Authorization: Bearer` access token or API key (scope `conversations:read`), or a first
/// message `{"type":"auth","token":"…"}` within 5 seconds; the server answers
/// `{"type":"ready"}` and then sends the tenant's events. Never put a token in the URL.
#[utoipa::path(get, path = "/api/v1/ws", tag = "realtime", security(("bearer" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: a websocket carrying JSON frames (see docs/realtime.md for the protocol, close codes 4401/4403/1001/1011 and an example of every event)", body = RealtimeFrame),
        (status = 400, description = "A credential in the URL (`token_in_url`) or another query parameter (`invalid_query`)", body = ErrorBody),
        (status = 403, description = "A cookie-authenticated upgrade from another origin (`origin_not_allowed`)", body = ErrorBody),
        (status = 429, description = "The user (or API key) already holds `PALISADE_WS_MAX_PER_USER` open sockets (`too_many_websockets`)", body = ErrorBody),
        (status = 426, description = "Not a websocket handshake (`upgrade_required`)", body = ErrorBody)))]
pub async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    client: Option<Extension<ClientIp>>,
    outcome: Option<Extension<AuthOutcome>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let credential_in_url = q.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            CREDENTIAL_PARAMS.contains(&name.to_ascii_lowercase().as_str())
        });
        return if credential_in_url {
            render(
                StatusCode::BAD_REQUEST,
                code::TOKEN_IN_URL,
                "credentials are never accepted in the URL (URLs end up in logs); send \
                 {\"type\":\"auth\",\"token\":\"…\"} as the first message instead"
                    .into(),
                None,
            )
        } else {
            render(
                StatusCode::BAD_REQUEST,
                code::INVALID_QUERY,
                "this endpoint takes no query parameters".into(),
                None,
            )
        };
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return render(
                StatusCode::UPGRADE_REQUIRED,
                code::UPGRADE_REQUIRED,
                format!("this endpoint is a websocket: {}", e.body_text()),
                None,
            )
        }
    };
    let secure = state.services.settings.cookie_secure;
    let credential = match bearer(&headers) {
        Some(t) => Some(SocketCredential::from_bearer(t)),
        None => {
            let cookie = cookies::get(&headers, &cookies::name(cookies::ACCESS, secure));
            if cookie.is_some() && !same_origin(&headers, &state) {
                return render(
                    StatusCode::FORBIDDEN,
                    code::ORIGIN_NOT_ALLOWED,
                    "a cookie-authenticated websocket must be opened by a page of this site".into(),
                    None,
                );
            }
            // Cookies carry access tokens only, never API keys.
            cookie.map(|t| SocketCredential::AccessToken(t.to_owned()))
        }
    };
    let ip = client.and_then(|c| c.0 .0);
    let services = state.services.clone();
    // A credential in the handshake was authenticated (and an API key's use counted) by the
    // API middleware: its owner's socket budget is checked now, so the answer is a plain 429.
    let mut slot = None;
    if credential.is_some() {
        if let Some(Extension(AuthOutcome::Authenticated { principal, .. })) = &outcome {
            match services.realtime.open_socket(SocketOwner::of(principal)) {
                Some(s) => slot = Some(s),
                None => return too_many_websockets(&state),
            }
        }
    }
    let opening = Opening {
        ip,
        key_use: if credential.is_some() {
            KeyUse::Recheck
        } else {
            KeyUse::Counted
        },
        slot,
        meta: RequestMeta {
            ip,
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|u| u.chars().take(512).collect()),
            request_id: current_request_id(),
        },
    };
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| run(socket, services, credential, opening))
        .into_response()
}

fn too_many_websockets(state: &AppState) -> Response {
    render(
        StatusCode::TOO_MANY_REQUESTS,
        code::TOO_MANY_WEBSOCKETS,
        format!(
            "you already have {} open websockets (PALISADE_WS_MAX_PER_USER); close one first",
            state.services.settings.ws_max_per_user
        ),
        None,
    )
}

/// Whether the handshake's `Origin` is this site (the public URL, the `Host` it was sent to, or
/// a configured CORS origin). No `Origin` means no browser, so no ambient cookie to abuse.
fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let public = &state.services.settings.public_url;
    let public_origin = url_origin(public);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    state
        .web
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        || public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin))
        || host.is_some_and(|h| {
            origin.eq_ignore_ascii_case(&format!("http://{h}"))
                || origin.eq_ignore_ascii_case(&format!("https://{h}"))
        })
}

/// `scheme://host[:port]` of a URL.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_are_compared_by_scheme_host_and_port() {
        assert_eq!(
            super::url_origin("https://crm.example.com/app").as_deref(),
            Some("https://crm.example.com")
        );
        assert_eq!(
            super::url_origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
