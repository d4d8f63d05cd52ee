//! `/api/v1/webhooks`: outgoing webhooks (admins; API keys with `webhooks:write`).

use super::ListResponse;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiOptionalJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::webhooks::{self, NewWebhook, WebhookChanges};
// The OpenAPI attributes name the answers by their schema names (the views are documented as
// `WebhookResponse` and `DeliveryResponse`, as before they were shared with core).
use palisade_core::webhooks::{DeliveryView as DeliveryResponse, WebhookView as WebhookResponse};
use palisade_domain::{DeliveryId, WebhookId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_allowed_domains, put_allowed_domains))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(approve_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://…` (port 443). Refused: private, loopback, link-local and metadata addresses,
    /// internal names, credentials in the URL.
    #[schema(
        pattern = r"^https://([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*(:443)?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
    )]
    pub url: String,
    /// Event types (`user.created`), prefixes (`user.*`) or `*`.
    #[schema(value_type = Vec<crate::openapi::schemas::EventSubscription>, inline, min_items = 1)]
    pub events: Vec<String>,
    /// At most 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    /// `hmac_sha256` (default; `hmac-sha256` is accepted too): Standard Webhooks `v1` with a
    /// `whsec_` secret. `ed25519`: `v1a` signatures; the response's `secret` is then the
    /// `whpk_…` public key to verify with (the private key never leaves the server).
    #[schema(value_type = Option<crate::openapi::schemas::SignatureAlgorithmName>, inline)]
    pub signature_algorithm: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// A new URL outside the allowlists sends the webhook back to `pending_approval`.
    #[schema(
        pattern = r"^https://([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*(:443)?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
    )]
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<crate::openapi::schemas::EventSubscription>>, inline, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// At most 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    /// `active` (re-enable a disabled webhook) or `disabled`.
    #[schema(value_type = Option<crate::openapi::schemas::WebhookStatusChange>, inline)]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Stop signing with the previous secret at once (it leaked). Default: it keeps signing
    /// for 24 hours beside the new one. The same as `overlap_seconds: 0`.
    #[serde(default)]
    pub expire_previous_now: bool,
    /// How long the previous secret (or key) keeps signing beside the new one: 0 to 604800
    /// (7 days); default 86400 (24 hours). Out of range: `422 validation_failed`.
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomains {
    /// Hosts (and their subdomains) whose webhooks are active without approval.
    #[schema(value_type = Vec<crate::openapi::schemas::AllowedDomain>, inline)]
    pub allowed_domains: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `next_cursor` of the previous page, unchanged (an opaque token; anything else is a
    /// `400 invalid_query`).
    pub cursor: Option<String>,
    /// At most this many, newest first (default 100, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryResponse>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page. An opaque token:
    /// the position of this page's last delivery.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecretResponse {
    pub webhook: WebhookResponse,
    /// HMAC webhooks: the `whsec_…` secret, shown only in this response; store it now.
    /// Ed25519 webhooks: the `whpk_…` public key (also the webhook's `public_key`).
    pub secret: String,
}

/// Register a webhook endpoint. The secret is in this response only. Endpoints outside the
/// platform's and the tenant's allowed domains start `pending_approval`.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = CreateWebhookRequest,
    responses((status = 201, description = "Created", body = WebhookWithSecretResponse),
        (status = 403, description = "Not an admin; an API key without `webhooks:write`, or subscribing to events it cannot read (`insufficient_scope` naming the scope; `api_key_not_allowed` for `user.*`, `api_key.*` and `*`)", body = ErrorBody),
        (status = 409, description = "webhook_limit_reached", body = ErrorBody),
        (status = 422, description = "URL refused, unknown events", body = ErrorBody)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecretResponse>)> {
    let (w, secret) = webhooks::create(
        &state.services,
        &p,
        &meta,
        NewWebhook {
            url: req.url,
            events: req.events,
            description: req.description,
            signature_algorithm: req.signature_algorithm,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecretResponse { webhook: w, secret }),
    ))
}

/// The tenant's webhooks (never the secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, description = "Webhooks, oldest first", body = ListResponse<WebhookResponse>),
        (status = 403, description = "Not an admin; an API key without `webhooks:read` or `webhooks:write` (`insufficient_scope`); an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<WebhookResponse>>> {
    let list = webhooks::list(&state.services, &p).await?;
    Ok(Json(ListResponse { data: list }))
}

/// One webhook.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook", body = WebhookResponse),
        (status = 403, description = "Not an admin; an API key without `webhooks:read` or `webhooks:write` (`insufficient_scope`); an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookResponse>> {
    let w = webhooks::get(&state.services, &p, WebhookId::from(id)).await?;
    Ok(Json(w))
}

/// Change a webhook's URL, events, description, or pause/re-enable it.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")), request_body = UpdateWebhookRequest,
    responses((status = 200, description = "The updated webhook", body = WebhookResponse),
        (status = 403, description = "Not an admin; an API key without `webhooks:write`, or subscribing to events it cannot read (`insufficient_scope` naming the scope; `api_key_not_allowed` for `user.*`, `api_key.*` and `*`)", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody),
        (status = 409, description = "approval_required", body = ErrorBody),
        (status = 422, description = "URL refused, unknown events", body = ErrorBody)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateWebhookRequest>,
) -> ApiResult<Json<WebhookResponse>> {
    let w = webhooks::update(
        &state.services,
        &p,
        &meta,
        WebhookId::from(id),
        WebhookChanges {
            url: req.url,
            events: req.events,
            description: req.description,
            status: req.status,
        },
    )
    .await?;
    Ok(Json(w))
}

/// Delete a webhook and its delivery log (the audit log keeps its history).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&state.services, &p, &meta, WebhookId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Approve a webhook that is pending approval (any admin); deliveries start.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/approve", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, description = "The approved webhook", body = WebhookResponse),
        (status = 403, description = "Not a signed-in admin: API keys (`api_key_not_allowed`) and impersonations (`impersonation_forbidden`) never", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody),
        (status = 409, description = "not_pending_approval", body = ErrorBody)))]
pub async fn approve_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookResponse>> {
    let w = webhooks::approve(&state.services, &p, &meta, WebhookId::from(id)).await?;
    Ok(Json(w))
}

/// A new signing secret or Ed25519 key pair (the secret, or the new public key, is in the
/// response). The previous one keeps signing for `overlap_seconds` (default 24 hours, at most
/// 7 days) unless `expire_previous_now` or `overlap_seconds: 0`.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")), request_body(content = Option<RotateSecretRequest>, description = "Optional"),
    responses((status = 200, description = "The webhook and its new secret", body = WebhookWithSecretResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody),
        (status = 422, description = "overlap_seconds out of range", body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiOptionalJson(req): ApiOptionalJson<RotateSecretRequest>,
) -> ApiResult<Response> {
    let (expire, overlap) = req.map_or((false, None), |r| {
        (r.expire_previous_now, r.overlap_seconds)
    });
    let (webhook, secret) = webhooks::rotate_secret(
        &state.services,
        &p,
        &meta,
        WebhookId::from(id),
        expire,
        overlap,
    )
    .await?;
    Ok(Json(WebhookWithSecretResponse { webhook, secret }).into_response())
}

/// Queue a `webhook.test` event for this webhook.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 202, description = "Queued", body = DeliveryResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody),
        (status = 409, description = "webhook_not_active", body = ErrorBody)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<DeliveryResponse>)> {
    let d = webhooks::send_test(&state.services, &p, &meta, WebhookId::from(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// The webhook's deliveries, newest first (by creation, ties by id), paged: pass `next_cursor`
/// back as `cursor` for older ones.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveriesQuery),
    responses((status = 200, description = "Deliveries", body = DeliveryPage),
        (status = 400, description = "invalid_query: a cursor that is not a next_cursor of this list, or a malformed parameter", body = ErrorBody),
        (status = 403, description = "Not an admin; an API key without `webhooks:read` or `webhooks:write` (`insufficient_scope`); an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 404, description = "No such webhook in your tenant", body = ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let page = webhooks::list_deliveries(
        &state.services,
        &p,
        WebhookId::from(id),
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    Ok(Json(DeliveryPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// Attempt a delivery again now (whatever its status).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Webhook id"), ("delivery_id" = Uuid, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued", body = DeliveryResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such webhook or delivery in your tenant", body = ErrorBody)))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath((id, delivery_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<DeliveryResponse>)> {
    let d = webhooks::retry_delivery(
        &state.services,
        &p,
        &meta,
        WebhookId::from(id),
        DeliveryId::from(delivery_id),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// The tenant's allowed webhook domains.
#[utoipa::path(get, path = "/api/v1/webhooks/allowed-domains", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, description = "The tenant's list", body = AllowedDomains),
        (status = 403, description = "Not an admin; an API key without `webhooks:read` or `webhooks:write` (`insufficient_scope`); an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn get_allowed_domains(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<AllowedDomains>> {
    let allowed_domains = webhooks::allowed_domains(&state.services, &p).await?;
    Ok(Json(AllowedDomains { allowed_domains }))
}

/// Replace the tenant's allowed webhook domains (existing webhooks are not re-evaluated).
#[utoipa::path(put, path = "/api/v1/webhooks/allowed-domains", tag = "webhooks", security(("bearer" = [])),
    request_body = AllowedDomains,
    responses((status = 200, description = "The new list", body = AllowedDomains),
        (status = 403, description = "Not a signed-in admin: API keys (`api_key_not_allowed`) and impersonations (`impersonation_forbidden`) never", body = ErrorBody),
        (status = 422, description = "Not host names", body = ErrorBody)))]
pub async fn put_allowed_domains(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<AllowedDomains>,
) -> ApiResult<Json<AllowedDomains>> {
    let allowed_domains =
        webhooks::set_allowed_domains(&state.services, &p, &meta, &req.allowed_domains).await?;
    Ok(Json(AllowedDomains { allowed_domains }))
}
