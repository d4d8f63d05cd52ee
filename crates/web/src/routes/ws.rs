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

use crate::cookies;
use crate::error::{render, ErrorBody};
use crate::middleware::{bearer, current_request_id, AuthOutcome, ClientIp};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::SinkExt;
use palisade_core::auth::{KeyUse, RequestMeta};
use palisade_core::realtime::{
    self, Received, SocketCredential, SocketOwner, SocketSlot, Subscription,
};
use palisade_core::{AppError, Services};
use palisade_domain::TenantId;
use serde::Serialize;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;
use utoipa::ToSchema;

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

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ws", get(ws))
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
                "token_in_url",
                "credentials are never accepted in the URL (URLs end up in logs); send \
                 {\"type\":\"auth\",\"token\":\"…\"} as the first message instead"
                    .into(),
                None,
            )
        } else {
            render(
                StatusCode::BAD_REQUEST,
                "invalid_query",
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
                "upgrade_required",
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
                    "origin_not_allowed",
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
        "too_many_websockets",
        format!(
            "you already have {} open websockets (PALISADE_WS_MAX_PER_USER); close one first",
            state.services.settings.ws_max_per_user
        ),
        None,
    )
}

/// What the handshake knew about a socket being opened.
struct Opening {
    ip: Option<IpAddr>,
    /// Whether authorising the socket counts as a use of an API key (not when the handshake's
    /// credential was already counted by the API middleware).
    key_use: KeyUse,
    /// The socket's place in its owner's budget, when the handshake carried the credential.
    slot: Option<SocketSlot>,
    /// For the audit record of an impersonated socket.
    meta: RequestMeta,
}

/// Records, once, that a socket is listening under an impersonation (both identities).
async fn audit_impersonated_socket(
    s: &Services,
    p: &palisade_core::auth::Principal,
    meta: &RequestMeta,
) {
    if p.impersonator.is_none() {
        return;
    }
    if let Err(e) = palisade_core::platform::record_impersonated_request(
        s,
        p,
        meta,
        "GET",
        "/api/v1/ws",
        StatusCode::SWITCHING_PROTOCOLS.as_u16(),
    )
    .await
    {
        tracing::error!(error = %e, "could not audit a websocket opened under impersonation");
    }
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

/// Why a socket is being closed.
struct Closing {
    code: u16,
    reason: &'static str,
}

fn closing_for(e: &AppError) -> Option<Closing> {
    match e {
        AppError::Unauthenticated { code, .. } => Some(Closing {
            code: close::UNAUTHENTICATED,
            reason: code,
        }),
        AppError::Forbidden { code, .. } => Some(Closing {
            code: close::FORBIDDEN,
            reason: code,
        }),
        _ => None,
    }
}

async fn send(socket: &mut WebSocket, msg: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn send_json(socket: &mut WebSocket, v: Value) -> Result<(), ()> {
    send(socket, Message::Text(Utf8Bytes::from(v.to_string()))).await
}

async fn close_with(mut socket: WebSocket, c: Closing) {
    let frame = CloseFrame {
        code: c.code,
        reason: Utf8Bytes::from(c.reason),
    };
    let _ = send(&mut socket, Message::Close(Some(frame))).await;
}

fn error_frame(code: &str, message: &str) -> Value {
    json!({"type": "error", "data": {"code": code, "message": message}})
}

/// What a client sent.
enum ClientMessage {
    Auth(SocketCredential),
    Ping,
    Unknown(String),
    Malformed,
}

fn parse_client(text: &str) -> ClientMessage {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return ClientMessage::Malformed;
    };
    match v.get("type").and_then(Value::as_str) {
        Some("auth") => match v.get("token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => ClientMessage::Auth(SocketCredential::from_bearer(t)),
            _ => ClientMessage::Malformed,
        },
        Some("ping") => ClientMessage::Ping,
        Some(other) => ClientMessage::Unknown(other.chars().take(64).collect()),
        None => ClientMessage::Malformed,
    }
}

/// Waits for the first message, which must be `{"type":"auth","token":…}`.
async fn first_credential(socket: &mut WebSocket) -> Result<SocketCredential, Option<Closing>> {
    let deadline = tokio::time::sleep(AUTH_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Err(Some(Closing { code: close::UNAUTHENTICATED, reason: "auth_timeout" })),
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(None),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(t))) => match parse_client(t.as_str()) {
                    ClientMessage::Auth(c) => return Ok(c),
                    _ => return Err(Some(Closing { code: close::UNAUTHENTICATED, reason: "auth_required" })),
                },
                Some(Ok(Message::Binary(_))) => {
                    return Err(Some(Closing { code: close::UNAUTHENTICATED, reason: "auth_required" }))
                }
            }
        }
    }
}

/// One socket, one task: authenticate, subscribe, then relay the tenant's events while
/// re-checking the credential every second.
async fn run(
    mut socket: WebSocket,
    s: Services,
    credential: Option<SocketCredential>,
    opening: Opening,
) {
    let Opening {
        ip,
        key_use,
        slot,
        meta,
    } = opening;
    let mut credential = match credential {
        Some(c) => c,
        None => match first_credential(&mut socket).await {
            Ok(c) => c,
            Err(Some(c)) => return close_with(socket, c).await,
            Err(None) => return,
        },
    };
    let (principal, tenant) = match realtime::authorize(&s, &credential, ip, key_use).await {
        Ok(v) => v,
        Err(e) => {
            let c = closing_for(&e).unwrap_or_else(|| {
                tracing::error!(error = %e, "websocket authorisation failed");
                Closing {
                    code: close::INTERNAL,
                    reason: "internal_error",
                }
            });
            return close_with(socket, c).await;
        }
    };
    // Held until the socket ends (dropped with this task).
    let _slot = match slot {
        Some(slot) => slot,
        None => match s.realtime.open_socket(SocketOwner::of(&principal)) {
            Some(slot) => slot,
            None => {
                let c = Closing {
                    code: close::TOO_MANY,
                    reason: "too_many_websockets",
                };
                return close_with(socket, c).await;
            }
        },
    };
    audit_impersonated_socket(&s, &principal, &meta).await;
    let user = principal.user_id;
    let mut audited_session = principal
        .impersonator
        .is_some()
        .then(|| principal.session_id().ok())
        .flatten();
    drop(principal);
    // Subscribed before `ready`: every event after `ready` reaches the socket.
    let mut events = s.realtime.subscribe(tenant);
    if send_json(&mut socket, json!({"type": "ready"}))
        .await
        .is_err()
    {
        return;
    }
    let mut closing = s.realtime.closing();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet: u32 = 0;
    loop {
        if *closing.borrow() {
            let c = Closing {
                code: close::GOING_AWAY,
                reason: "server_shutting_down",
            };
            return close_with(socket, c).await;
        }
        let turn = tokio::select! {
            _ = closing.changed() => Ok(()),
            r = events.recv() => on_event(&mut socket, &mut events, r).await,
            m = socket.recv() => {
                quiet = 0;
                let mut who = Who {
                    credential: &mut credential,
                    ip,
                    tenant,
                    user,
                    meta: &meta,
                    audited_session: &mut audited_session,
                };
                on_client(&mut socket, &s, m, &mut who).await
            },
            _ = tick.tick() => {
                quiet += 1;
                on_tick(&mut socket, &s, &credential, ip, tenant, quiet).await
            },
        };
        match turn {
            Ok(()) => {}
            Err(Some(c)) => return close_with(socket, c).await,
            Err(None) => return,
        }
    }
}

/// What one turn of a socket's loop decided: go on, close with a reason, or just end (the
/// client is gone).
type Turn = Result<(), Option<Closing>>;

fn gone(_: ()) -> Option<Closing> {
    None
}

/// Relays one event (or tells the client it fell behind), and the events already waiting
/// after it (at most [`RELAY_BATCH`]), with one flush: a burst costs one write, not one per
/// event.
async fn on_event(socket: &mut WebSocket, events: &mut Subscription, first: Received) -> Turn {
    let message = |r: Received| match r {
        Received::Frame(f) => Message::Text(Utf8Bytes::from(&*f)),
        Received::Lagged(n) => Message::Text(Utf8Bytes::from(
            json!({"type": "lagged", "data": {"missed": n}}).to_string(),
        )),
    };
    let relay = async {
        socket.feed(message(first)).await?;
        for _ in 1..RELAY_BATCH {
            let Some(r) = events.try_recv() else { break };
            socket.feed(message(r)).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, relay).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(None),
    }
}

/// Who the socket listens as; `credential` is replaced by a fresh token sent in-band.
struct Who<'a> {
    credential: &'a mut SocketCredential,
    ip: Option<IpAddr>,
    tenant: TenantId,
    user: palisade_domain::UserId,
    meta: &'a RequestMeta,
    /// The impersonation session already audited on this socket, if any.
    audited_session: &'a mut Option<palisade_domain::SessionId>,
}

/// Answers what the client sent: `ping`, a fresh `auth`, or an error frame for anything else.
async fn on_client(
    socket: &mut WebSocket,
    s: &Services,
    m: Option<Result<Message, axum::Error>>,
    who: &mut Who<'_>,
) -> Turn {
    let text = match m {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(None),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
        Some(Ok(Message::Binary(_))) => {
            let e = error_frame("unsupported_message", "frames are JSON text");
            return send_json(socket, e).await.map_err(gone);
        }
        Some(Ok(Message::Text(t))) => t,
    };
    let reply = match parse_client(text.as_str()) {
        ClientMessage::Ping => json!({"type": "pong"}),
        ClientMessage::Auth(fresh) => {
            let p = reauthenticate(s, &fresh, who.ip, who.tenant, who.user)
                .await
                .map_err(Some)?;
            // A socket that now listens under another impersonation is audited once more.
            if p.impersonator.is_some() {
                let session = p.session_id().ok();
                if session != *who.audited_session {
                    audit_impersonated_socket(s, &p, who.meta).await;
                    *who.audited_session = session;
                }
            }
            *who.credential = fresh;
            json!({"type": "ready"})
        }
        ClientMessage::Unknown(t) => error_frame(
            "unknown_type",
            &format!("unknown message type {t:?}; clients send auth or ping"),
        ),
        ClientMessage::Malformed => {
            error_frame("malformed_message", "send JSON such as {\"type\":\"ping\"}")
        }
    };
    send_json(socket, reply).await.map_err(gone)
}

/// Every second: re-check the credential; keepalive pings; close a silent client.
async fn on_tick(
    socket: &mut WebSocket,
    s: &Services,
    credential: &SocketCredential,
    ip: Option<IpAddr>,
    tenant: TenantId,
    quiet: u32,
) -> Turn {
    recheck(s, credential, ip, tenant).await.map_err(Some)?;
    if quiet >= IDLE_TICKS {
        return Err(Some(Closing {
            code: close::GOING_AWAY,
            reason: "idle_timeout",
        }));
    }
    if quiet.is_multiple_of(PING_TICKS) {
        return send(socket, Message::Ping(Bytes::new()))
            .await
            .map_err(gone);
    }
    Ok(())
}

/// The credential still holds, for the same tenant. A database hiccup keeps the socket open.
async fn recheck(
    s: &Services,
    credential: &SocketCredential,
    ip: Option<IpAddr>,
    tenant: TenantId,
) -> Result<(), Closing> {
    match realtime::authorize(s, credential, ip, KeyUse::Recheck).await {
        Ok((_, t)) if t == tenant => Ok(()),
        Ok(_) => Err(Closing {
            code: close::FORBIDDEN,
            reason: "tenant_changed",
        }),
        Err(e) => match closing_for(&e) {
            Some(c) => Err(c),
            None => {
                tracing::warn!(error = %e, "websocket credential re-check failed; kept open");
                Ok(())
            }
        },
    }
}

/// A fresh token sent on an open socket (before the old one expires) must be the same user's
/// in the same tenant.
async fn reauthenticate(
    s: &Services,
    fresh: &SocketCredential,
    ip: Option<IpAddr>,
    tenant: TenantId,
    user: palisade_domain::UserId,
) -> Result<palisade_core::auth::Principal, Closing> {
    // The same socket: a fresh credential is not another use of a key.
    match realtime::authorize(s, fresh, ip, KeyUse::Recheck).await {
        Ok((p, t)) if t == tenant && p.user_id == user => Ok(p),
        Ok(_) => Err(Closing {
            code: close::FORBIDDEN,
            reason: "credential_mismatch",
        }),
        Err(e) => Err(closing_for(&e).unwrap_or(Closing {
            code: close::INTERNAL,
            reason: "internal_error",
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::messaging::{ConversationResponse, MessageResponse};
    use palisade_core::realtime::{conversation_json, message_json};
    use palisade_core::records::{Conversation, Message};
    use serde_json::json;
    use sqlx::types::Json;
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// Events carry `data` rendered in core; it must stay what the REST API returns.
    #[test]
    fn event_data_is_the_rest_representation() {
        let now = OffsetDateTime::now_utc();
        for (optional, error) in [(true, Some(json!([{"code": 131026}]))), (false, None)] {
            let m = Message {
                id: Uuid::now_v7(),
                tenant_id: Uuid::now_v7(),
                conversation_id: Uuid::now_v7(),
                connection_id: Uuid::now_v7(),
                wamid: optional.then(|| "wamid.abc".to_owned()),
                direction: "outbound".into(),
                kind: "text".into(),
                body: Json(json!({"type": "text", "text": {"body": "hello"}})),
                text: optional.then(|| "hello".to_owned()),
                status: "failed".into(),
                error: error.clone().map(Json),
                context_wamid: optional.then(|| "wamid.ctx".to_owned()),
                sent_at: optional.then_some(now),
                created_at: now,
                status_updated_at: now,
                author_id: optional.then(Uuid::now_v7),
                media: None,
            };
            let mut m = m;
            if optional {
                m.media = Some(palisade_core::records::MessageMedia {
                    message_id: m.id,
                    tenant_id: m.tenant_id,
                    kind: "image".into(),
                    media_id: "1234567890".into(),
                    mime_type: Some("image/jpeg".into()),
                    sha256: Some("aGVsbG8=".into()),
                    filename: None,
                    status: "stored".into(),
                    size_bytes: Some(5),
                    content_sha256: Some("2cf24dba".into()),
                    storage_key: Some("0123456789abcdef0123456789abcdef".into()),
                    attempts: 1,
                    next_attempt_at: now,
                    error_code: Some("media_url_expired".into()),
                    error: Some("the download URL expired".into()),
                    created_at: now,
                    updated_at: now,
                });
            }
            assert_eq!(
                message_json(&m),
                serde_json::to_value(MessageResponse::from(m.clone())).unwrap()
            );
            let c = Conversation {
                id: Uuid::now_v7(),
                tenant_id: Uuid::now_v7(),
                contact_id: Uuid::now_v7(),
                connection_id: Uuid::now_v7(),
                status: "open".into(),
                last_message_at: now,
                last_inbound_at: optional.then_some(now),
                created_at: now,
                updated_at: now,
                assignee_id: optional.then(Uuid::now_v7),
                labels: Json(vec!["vip".into()]),
                contact_phone: "+447700900123".into(),
                contact_name: optional.then(|| "Ana".to_owned()),
            };
            assert_eq!(
                conversation_json(&c),
                serde_json::to_value(ConversationResponse::from(c.clone())).unwrap()
            );
        }
    }

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
