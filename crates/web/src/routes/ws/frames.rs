//! What travels on a realtime socket: the messages a client may send, the JSON frames and
//! close reasons the server answers with, and sending with a deadline. Apart from the loop in
//! `socket` so the protocol can be read (and checked against docs/realtime.md) on its own.

use super::{close, SEND_TIMEOUT};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use palisade_core::realtime::SocketCredential;
use palisade_core::AppError;
use serde_json::{json, Value};

/// Why a socket is being closed.
pub(super) struct Closing {
    pub(super) code: u16,
    pub(super) reason: &'static str,
}

pub(super) fn closing_for(e: &AppError) -> Option<Closing> {
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

pub(super) async fn send(socket: &mut WebSocket, msg: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

pub(super) async fn send_json(socket: &mut WebSocket, v: Value) -> Result<(), ()> {
    send(socket, Message::Text(Utf8Bytes::from(v.to_string()))).await
}

pub(super) async fn close_with(mut socket: WebSocket, c: Closing) {
    let frame = CloseFrame {
        code: c.code,
        reason: Utf8Bytes::from(c.reason),
    };
    let _ = send(&mut socket, Message::Close(Some(frame))).await;
}

pub(super) fn error_frame(code: &str, message: &str) -> Value {
    json!({"type": "error", "data": {"code": code, "message": message}})
}

/// What a client sent.
pub(super) enum ClientMessage {
    Auth(SocketCredential),
    Ping,
    Unknown(String),
    Malformed,
}

pub(super) fn parse_client(text: &str) -> ClientMessage {
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
