//! The life of one realtime socket after the upgrade: wait for a credential if the handshake
//! had none, authorise it, take a place in the owner's socket budget, then relay the tenant's
//! events while re-checking the credential every second and keeping the connection alive.
//! One task per socket; every way out of the loop closes with a reason from `frames`.

use super::frames::{
    close_with, closing_for, error_frame, parse_client, send, send_json, ClientMessage, Closing,
};
use super::{close, AUTH_TIMEOUT, IDLE_TICKS, PING_TICKS, RELAY_BATCH, SEND_TIMEOUT, TICK};
use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::StatusCode;
use futures_util::SinkExt;
use palisade_core::auth::{KeyUse, RequestMeta};
use palisade_core::error::code;
use palisade_core::realtime::{
    self, Received, SocketCredential, SocketOwner, SocketSlot, Subscription,
};
use palisade_core::Services;
use palisade_domain::TenantId;
use serde_json::json;
use std::net::IpAddr;

/// What the handshake knew about a socket being opened.
pub(super) struct Opening {
    pub(super) ip: Option<IpAddr>,
    /// Whether authorising the socket counts as a use of an API key (not when the handshake's
    /// credential was already counted by the API middleware).
    pub(super) key_use: KeyUse,
    /// The socket's place in its owner's budget, when the handshake carried the credential.
    pub(super) slot: Option<SocketSlot>,
    /// For the audit record of an impersonated socket.
    pub(super) meta: RequestMeta,
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
pub(super) async fn run(
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
                    reason: code::INTERNAL_ERROR,
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
                    reason: code::TOO_MANY_WEBSOCKETS,
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
    // Subscribed (and announced to the other nodes) before `ready`: every event after
    // `ready` reaches the socket, whichever node publishes it.
    let mut events = s.realtime.subscribe(tenant);
    events.announced().await;
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
            reason: code::INTERNAL_ERROR,
        })),
    }
}
