//! `/api/v1/whatsapp/connections` (admins) and Meta's webhooks on
//! `/webhooks/whatsapp/{connection_id}`: the `GET` handshake and the signed `POST` deliveries.

use super::ListResponse;
use crate::error::render;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, Meta};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::whatsapp::connections::{
    self, ConnectionChanges, ConnectionView, NewConnection,
};
use palisade_core::whatsapp::inbound;
use palisade_domain::ConnectionId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Authenticated management routes (under the API middleware).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(delete_connection, update_connection))
        .routes(routes!(disconnect_connection))
}

/// Meta's webhook routes (authenticated by verify token or signature, not by our credentials).
pub fn webhook_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_webhook, receive_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: String,
    /// Meta's phone number id (digits).
    #[schema(pattern = "^[0-9]{1,32}$")]
    pub phone_number_id: String,
    /// The WhatsApp Business Account id (digits).
    #[schema(pattern = "^[0-9]{1,32}$")]
    pub waba_id: String,
    /// A system-user access token; verified against the Graph API, stored encrypted, never shown.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub access_token: String,
    /// The Meta app secret that signs webhooks; stored encrypted, never shown.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub app_secret: String,
}

/// New credentials or name for a connection; absent fields stay (at least one is required).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        value_type = String,
        required = false,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: Option<String>,
    /// A new system-user access token; verified against the Graph API first, stored encrypted.
    #[schema(
        value_type = String,
        required = false,
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub access_token: Option<String>,
    /// A new Meta app secret (webhook signatures are checked with it at once); stored encrypted.
    #[schema(
        value_type = String,
        required = false,
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub app_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedConnectionResponse {
    pub connection: ConnectionView,
    /// Callback URL for Meta's dashboard (same as `connection.webhook_url`).
    pub webhook_url: String,
    /// Verify token for Meta's dashboard. Shown only in this response.
    pub verify_token: String,
    /// True when this number's disconnected connection was connected again: same id, webhook
    /// URL and conversations, new credentials and verify token.
    pub reconnected: bool,
}

/// Connect a WhatsApp Business number (admins). The token is verified with the Graph API first.
/// A number this tenant disconnected earlier is connected again on its old connection (same id
/// and conversations, `reconnected: true`).
#[utoipa::path(post, path = "/api/v1/whatsapp/connections", tag = "whatsapp", security(("bearer" = [])),
    request_body = CreateConnectionRequest,
    responses((status = 201, description = "Connected (or reconnected); paste webhook_url and verify_token into Meta's dashboard", body = CreatedConnectionResponse),
        (status = 403, description = "Not an admin (API keys and impersonations never)", body = ErrorBody),
        (status = 409, description = "An active connection (of any tenant) already has this number (`phone_number_already_connected`)", body = ErrorBody),
        (status = 422, description = "Invalid fields, or Meta refused the token or number", body = ErrorBody),
        (status = 503, description = "The Graph API could not be reached", body = ErrorBody)))]
pub async fn create_connection(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateConnectionRequest>,
) -> ApiResult<(StatusCode, Json<CreatedConnectionResponse>)> {
    let created = connections::create(
        &state.services,
        &p,
        &meta,
        NewConnection {
            display_name: req.display_name,
            phone_number_id: req.phone_number_id,
            waba_id: req.waba_id,
            access_token: req.access_token,
            app_secret: req.app_secret,
        },
    )
    .await?;
    let connection = ConnectionView::of(&state.services, &created.connection);
    Ok((
        StatusCode::CREATED,
        Json(CreatedConnectionResponse {
            webhook_url: connection.webhook_url.clone(),
            connection,
            verify_token: created.verify_token,
            reconnected: created.reconnected,
        }),
    ))
}

/// The tenant's WhatsApp connections (never their secrets).
#[utoipa::path(get, path = "/api/v1/whatsapp/connections", tag = "whatsapp", security(("bearer" = [])),
    responses((status = 200, description = "Connections", body = ListResponse<ConnectionView>),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list_connections(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<ConnectionView>>> {
    let list = connections::list(&state.services, &p).await?;
    Ok(Json(ListResponse {
        data: list
            .iter()
            .map(|c| ConnectionView::of(&state.services, c))
            .collect(),
    }))
}

/// Replace a connection's display name or credentials (admins; never API keys or impersonations).
#[utoipa::path(patch, path = "/api/v1/whatsapp/connections/{id}", tag = "whatsapp", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    request_body = UpdateConnectionRequest,
    responses((status = 200, description = "Updated; the connection as the list shows it", body = ConnectionView),
        (status = 400, description = "Malformed id or body", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 404, description = "No such connection in your tenant", body = ErrorBody),
        (status = 422, description = "No field given, invalid fields, or Meta refused the token", body = ErrorBody),
        (status = 503, description = "The Graph API could not be reached", body = ErrorBody)))]
pub async fn update_connection(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateConnectionRequest>,
) -> ApiResult<Json<ConnectionView>> {
    let c = connections::update(
        &state.services,
        &p,
        &meta,
        ConnectionId::from(id),
        ConnectionChanges {
            display_name: req.display_name,
            access_token: req.access_token,
            app_secret: req.app_secret,
        },
    )
    .await?;
    Ok(Json(ConnectionView::of(&state.services, &c)))
}

/// Stop using a connection (kept for its history).
#[utoipa::path(post, path = "/api/v1/whatsapp/connections/{id}/disconnect", tag = "whatsapp", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    responses((status = 200, description = "Disconnected", body = ConnectionView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such connection in your tenant", body = ErrorBody),
        (status = 409, description = "Already disconnected", body = ErrorBody)))]
pub async fn disconnect_connection(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConnectionView>> {
    let c = connections::disconnect(&state.services, &p, &meta, ConnectionId::from(id)).await?;
    Ok(Json(ConnectionView::of(&state.services, &c)))
}

/// Delete a connection and its stored secrets.
#[utoipa::path(delete, path = "/api/v1/whatsapp/connections/{id}", tag = "whatsapp", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such connection in your tenant", body = ErrorBody)))]
pub async fn delete_connection(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    connections::delete(&state.services, &p, &meta, ConnectionId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Meta's verification handshake: echoes `hub.challenge` as text/plain when `hub.mode` is
/// `subscribe` and `hub.verify_token` is the connection's; anything else is 403.
#[utoipa::path(get, path = "/webhooks/whatsapp/{connection_id}", tag = "whatsapp",
    params(("connection_id" = Uuid, Path, description = "Connection id"),
        ("hub.mode" = String, Query, description = "`subscribe`"),
        ("hub.verify_token" = String, Query, description = "The connection's verify token"),
        ("hub.challenge" = String, Query, description = "Echoed back")),
    responses((status = 200, description = "The challenge, verbatim", content_type = "text/plain", body = String),
        (status = 403, description = "Verification failed", body = ErrorBody)))]
pub async fn verify_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let challenge = connections::verify_subscription(
        &state.services,
        ConnectionId::from(id),
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
    )
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge,
    )
        .into_response())
}

/// A webhook delivery from Meta. The connection is looked up before the body is read: an
/// unknown or disconnected one is refused without reading it. The `X-Hub-Signature-256` HMAC of
/// the raw body (keyed with the connection's app secret) is then checked before anything is
/// parsed; the body is stored durably, normally in the same transaction as its processing
/// (several POSTs share one commit under load), and acknowledged with 200 `{}` only after that
/// commit. A body whose processing fails is still stored and acknowledged, and processed again
/// from the stored record. Refusals are limited per client address
/// (`PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE`); correctly signed deliveries never are.
#[utoipa::path(post, path = "/webhooks/whatsapp/{connection_id}", tag = "whatsapp",
    params(("connection_id" = Uuid, Path, description = "Connection id"),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256(app secret, raw body)>`")),
    request_body(content = Object, description = "Meta's webhook payload, stored verbatim", content_type = "application/json"),
    responses((status = 200, description = "Stored durably (normally already processed)", body = Object),
        (status = 401, description = "Missing or wrong signature (`signature_missing`, `signature_invalid`), unknown (`unknown_connection`) or disconnected (`connection_disconnected`) connection; the last two are answered before the body is read", body = ErrorBody),
        (status = 413, description = "Body over 3 MB", body = ErrorBody),
        (status = 429, description = "Too many refused deliveries from this address (`rate_limited`); see Retry-After. Correctly signed deliveries are never limited", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The server is shutting down (`unavailable`); Meta retries", body = ErrorBody)))]
pub async fn receive_webhook(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let too_large = || {
        render(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {} bytes", inbound::MAX_BODY_BYTES),
            None,
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > inbound::MAX_BODY_BYTES) {
        return Ok(too_large());
    }
    // Before a byte of the body is read: a made-up or disconnected id costs one lookup.
    let admitted = inbound::admit(&state.services, &meta, ConnectionId::from(id)).await?;
    let Ok(bytes) = axum::body::to_bytes(body, inbound::MAX_BODY_BYTES).await else {
        return Ok(too_large());
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    inbound::receive(&state.services, &meta, admitted, signature, bytes.to_vec()).await?;
    Ok(Json(serde_json::json!({})).into_response())
}
