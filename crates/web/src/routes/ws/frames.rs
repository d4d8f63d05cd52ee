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

#[cfg(test)]
mod tests {
    use crate::routes::messaging::{ConversationResponse, MessageResponse};
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
}
