//! Rendering errors: every failure is `{"error":{"code","message","fields"?,"request_id"}}`.

use crate::middleware::current_request_id;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palisade_core::error::code;
use palisade_core::AppError;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `invalid_credentials`.
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// Per-field problems, each field with every rule it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
    /// The request id, also in the `X-Request-Id` header.
    pub request_id: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<palisade_domain::FieldError> for ApiError {
    fn from(e: palisade_domain::FieldError) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn render(
    status: StatusCode,
    code: &str,
    message: String,
    fields: Option<BTreeMap<String, Vec<String>>>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            fields,
            request_id: current_request_id(),
        },
    };
    (status, axum::Json(body)).into_response()
}

/// An application error as the client sees it: status, code, message, per-field problems and
/// how long to wait. The JSON API renders it as [`ErrorBody`]; the console renders the same
/// parts as a page or next to a form's fields.
#[derive(Debug)]
pub struct Classified {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<BTreeMap<String, Vec<String>>>,
    pub retry_after_secs: Option<u64>,
}

/// What the client is told about `e` (an internal error is logged here, with its cause).
pub fn classify(e: AppError) -> Classified {
    let (status, code, message, fields, retry) = match e {
        AppError::Validation { message, fields } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            code::VALIDATION_FAILED,
            message,
            Some(fields),
            None,
        ),
        AppError::BadRequest { code, message } => {
            (StatusCode::BAD_REQUEST, code, message, None, None)
        }
        AppError::Unauthenticated { code, message } => {
            (StatusCode::UNAUTHORIZED, code, message, None, None)
        }
        AppError::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message, None, None),
        AppError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("{what} not found"),
            None,
            None,
        ),
        AppError::Conflict { code, message } => (StatusCode::CONFLICT, code, message, None, None),
        AppError::Unprocessable { code, message } => {
            (StatusCode::UNPROCESSABLE_ENTITY, code, message, None, None)
        }
        AppError::PayloadTooLarge { code, message } => {
            (StatusCode::PAYLOAD_TOO_LARGE, code, message, None, None)
        }
        AppError::TooManyRequests {
            code,
            message,
            retry_after_secs,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            code,
            message,
            None,
            Some(retry_after_secs),
        ),
        AppError::Unavailable {
            message,
            retry_after_secs,
        } => (
            StatusCode::SERVICE_UNAVAILABLE,
            code::UNAVAILABLE,
            message,
            None,
            Some(retry_after_secs),
        ),
        AppError::Internal(e) => {
            tracing::error!(request_id = %current_request_id(), error = format!("{e:#}"), "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                "an internal error occurred; quote the request id when reporting it".to_owned(),
                None,
                None,
            )
        }
    };
    Classified {
        status,
        code,
        message,
        fields,
        retry_after_secs: retry,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Classified {
            status,
            code,
            message,
            fields,
            retry_after_secs: retry,
        } = classify(self.0);
        let mut resp = render(status, code, message, fields);
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// 404 for a path no route has: a page for a browser outside the API, else JSON.
pub async fn route_not_found(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        return crate::console::page::route_not_found(&state, &headers, uri.path()).await;
    }
    render(
        StatusCode::NOT_FOUND,
        code::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        None,
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    render(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_renders_429_with_retry_after() {
        let resp =
            ApiError(AppError::rate_limited("too many requests; slow down", 7)).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
    }
}
