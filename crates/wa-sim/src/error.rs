//! Graph API error envelope (reference §2.4):
//! `{"error":{"message":"(#<code>) <Title>","type":"OAuthException","code":…,
//! "error_data":{"messaging_product":"whatsapp","details":…},"fbtrace_id":…}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::ids;

/// One Graph API error. `error_subcode` is never written (deprecated since v16).
#[derive(Debug, Clone)]
pub struct GraphError {
    pub http: StatusCode,
    pub code: u32,
    pub kind: &'static str,
    pub message: String,
    pub details: Option<String>,
}

impl GraphError {
    fn wa(http: StatusCode, code: u32, title: &str, details: impl Into<String>) -> Self {
        Self {
            http,
            code,
            kind: "OAuthException",
            message: format!("(#{code}) {title}"),
            details: Some(details.into()),
        }
    }

    /// 190, no token at all.
    pub fn token_missing() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            code: 190,
            kind: "OAuthException",
            message: "An access token is required to request this resource.".into(),
            details: None,
        }
    }

    /// 190, a token the simulator never issued.
    pub fn token_invalid() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            code: 190,
            kind: "OAuthException",
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            details: None,
        }
    }

    /// 10: a valid token without access to this phone number / WABA / media.
    pub fn permission() -> Self {
        Self::wa(
            StatusCode::FORBIDDEN,
            10,
            "Application does not have permission for this action",
            "Permission is either not granted or has been removed.",
        )
    }

    /// 100 for an id that does not exist.
    pub fn unknown_object(method: &str, id: &str) -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            code: 100,
            kind: "GraphMethodException",
            message: format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation."
            ),
            details: None,
        }
    }

    /// 100 for an unknown route below a valid version.
    pub fn unknown_path() -> Self {
        Self {
            http: StatusCode::BAD_REQUEST,
            code: 100,
            kind: "OAuthException",
            message: "Unknown path components".into(),
            details: None,
        }
    }

    /// 100 Invalid parameter.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::wa(StatusCode::BAD_REQUEST, 100, "Invalid parameter", details)
    }

    /// 131008 Required parameter is missing.
    pub fn missing(param: &str) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131008,
            "Required parameter is missing",
            format!("The parameter {param} is required."),
        )
    }

    /// 131009 Parameter value is not valid.
    pub fn invalid_value(details: impl Into<String>) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131009,
            "Parameter value is not valid",
            details,
        )
    }

    /// 131051 Unsupported message type.
    pub fn unsupported_type(kind: &str) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131051,
            "Unsupported message type",
            format!("Message type {kind} is not currently supported."),
        )
    }

    /// 131047 Re-engagement message.
    pub fn window_closed() -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            WINDOW_DETAILS,
        )
    }

    /// 130429 Rate limit hit.
    pub fn throughput() -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        )
    }

    /// A recipient's refusal of template messages (`/_sim/recipients/{wa_id}/refuse`): 131049
    /// (per-user marketing limit) or 131050 (the user stopped marketing messages).
    pub fn refused(code: u32) -> Self {
        let (title, details) = if code == 131050 {
            (
                "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
                "The user has opted out of marketing messages from this business.",
            )
        } else {
            (
                "This message was not delivered to maintain healthy ecosystem engagement.",
                "The recipient has reached their limit of marketing messages.",
            )
        };
        Self::wa(StatusCode::BAD_REQUEST, code, title, details)
    }

    /// 131056 pair rate limit.
    pub fn pair_rate() -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Too many messages sent from the sender phone number to the same recipient phone \
             number in a short period of time.",
        )
    }

    /// 132000 parameter count mismatch.
    pub fn template_params(details: impl Into<String>) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            details,
        )
    }

    /// 132001 template missing in that language, or not approved.
    pub fn template_missing(name: &str, language: &str) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            132001,
            "Template name does not exist in the translation",
            format!("template name ({name}) does not exist in {language}"),
        )
    }

    /// 131053 media upload error.
    pub fn media_upload(details: impl Into<String>) -> Self {
        Self::wa(
            StatusCode::BAD_REQUEST,
            131053,
            "Media upload error",
            details,
        )
    }

    /// The JSON body, as Meta writes it.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": ids::fbtrace_id(),
        });
        if let (Some(details), Some(obj)) = (&self.details, error.as_object_mut()) {
            obj.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        json!({ "error": error })
    }

    /// The `errors[]` item used in webhooks (`title` and `message` identical, plus `href`).
    pub fn webhook_item(code: u32, title: &str, details: &str) -> Value {
        json!({
            "code": code,
            "title": title,
            "message": title,
            "error_data": {"details": details},
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        })
    }
}

pub const WINDOW_TITLE: &str = "Re-engagement message";
pub const WINDOW_DETAILS: &str = "Message failed to send because more than 24 hours have passed \
     since the customer last replied to this number.";

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = self.body();
        let trace = body
            .get("error")
            .and_then(|e| e.get("fbtrace_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut resp = (self.http, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        let reason = if self.code == 190 {
            "invalid_token"
        } else {
            "invalid_request"
        };
        let auth = format!(
            "OAuth \"Facebook Platform\" \"{reason}\" \"{}\"",
            self.message.replace('"', "'")
        );
        if let Ok(v) = HeaderValue::from_str(&auth) {
            headers.insert("www-authenticate", v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace) {
            headers.insert("x-fb-trace-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&ids::fbtrace_id()) {
            headers.insert("x-fb-request-id", v);
        }
        resp
    }
}
