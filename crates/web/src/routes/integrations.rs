//! `/api/v1/integrations` (admins): shops whose order webhooks Palisade receives, with their
//! rules; `/api/v1/contacts/{id}/orders`: a contact's orders; and the shops' webhooks on
//! `/webhooks/integrations/{id}` (authenticated by their signature, not by our credentials).

use crate::error::{render, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::routes::ListResponse;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::error::code;
use palisade_core::integrations::woocommerce::{self, Delivery, MAX_BODY_BYTES};
use palisade_core::integrations::{
    self, IntegrationPatch, IntegrationView, IntegrationWithSecretView, NewIntegration, OrderView,
};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::integrations::{
    IntegrationView as IntegrationResponse,
    IntegrationWithSecretView as IntegrationWithSecretResponse,
};
use palisade_domain::{ContactId, IntegrationId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Authenticated routes (under the API middleware).
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(
            get_integration,
            update_integration,
            delete_integration
        ))
        .routes(routes!(rotate_integration_secret))
        .routes(routes!(contact_orders))
}

/// The shops' webhooks (authenticated by their signature).
pub fn webhook_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(receive_store_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationRequest {
    /// `woocommerce`.
    #[schema(pattern = "^woocommerce$")]
    pub kind: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The WhatsApp connection the rules send from; absent: the tenant's only active one.
    pub connection_id: Option<Uuid>,
}

/// Changes to an integration: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// The whole new list (at most 20): `[{on: "order.created"|"order.status_changed",
    /// status?: "completed", template: {name, language}, parameters: [{type: "literal",
    /// value} | {type: "contact_field", field: "name"|"phone"|"email"|
    /// "custom_attributes.<key>", fallback?} | {type: "order_field", field:
    /// "number"|"status"|"total"|"currency"}]}]`. The first rule that matches an order event
    /// sends its template.
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<serde_json::Value>,
    /// A connection of your tenant, or `null` for the tenant's only active one.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub connection_id: Option<Option<Uuid>>,
}

/// The tenant's integrations, oldest first (never their secrets).
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])),
    responses((status = 200, description = "The integrations", body = ListResponse<IntegrationResponse>),
        (status = 403, description = "Missing integrations.manage (agents), an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn list_integrations(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<IntegrationView>>> {
    let data = integrations::list(&state.services, &p).await?;
    Ok(Json(ListResponse { data }))
}

/// Connect a shop (audited as `integration.created`). Admins only. The answer holds the
/// callback URL and the webhook secret, shown only now: paste both into the shop's webhook
/// (WooCommerce: topics Order created and Order updated).
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", security(("bearer" = [])),
    request_body = CreateIntegrationRequest,
    responses((status = 201, description = "Created; `secret` is shown only now", body = IntegrationWithSecretResponse),
        (status = 403, description = "Missing integrations.manage (agents), an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 422, description = "validation_failed naming kind, name or connection_id; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_integration(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateIntegrationRequest>,
) -> ApiResult<(StatusCode, Json<IntegrationWithSecretView>)> {
    let created = integrations::create(
        &state.services,
        &p,
        &meta,
        NewIntegration {
            kind: req.kind,
            name: req.name,
            connection_id: req.connection_id,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One integration (never its secret).
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 200, description = "The integration", body = IntegrationResponse),
        (status = 403, description = "Missing integrations.manage, an API key or an impersonation", body = ErrorBody),
        (status = 404, description = "No such integration in your tenant", body = ErrorBody)))]
pub async fn get_integration(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(
        integrations::get(&state.services, &p, IntegrationId::from_uuid(id)).await?,
    ))
}

/// Rename an integration, replace its rules or change its connection (audited as
/// `integration.updated`). Admins only. A request that changes nothing writes nothing.
#[utoipa::path(patch, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    request_body = UpdateIntegrationRequest,
    responses((status = 200, description = "The integration", body = IntegrationResponse),
        (status = 403, description = "Missing integrations.manage, an API key or an impersonation", body = ErrorBody),
        (status = 404, description = "No such integration in your tenant", body = ErrorBody),
        (status = 422, description = "validation_failed naming name, connection_id or rules (each problem as `rule <i>: …`: the trigger, the status, the template's name and language format, each parameter's shape); invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn update_integration(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateIntegrationRequest>,
) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(
        integrations::update(
            &state.services,
            &p,
            &meta,
            IntegrationId::from_uuid(id),
            IntegrationPatch {
                name: req.name,
                rules: req.rules,
                connection_id: req.connection_id,
            },
        )
        .await?,
    ))
}

/// Delete an integration with its orders (audited as `integration.deleted`). Admins only. The
/// shop's later deliveries are refused.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Missing integrations.manage, an API key or an impersonation", body = ErrorBody),
        (status = 404, description = "No such integration in your tenant", body = ErrorBody)))]
pub async fn delete_integration(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    integrations::delete(&state.services, &p, &meta, IntegrationId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new webhook secret, in force at once (audited as `integration.secret_rotated`); the old
/// one stops verifying. Admins only. Shown only now: paste it into the shop.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/rotate-secret", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Integration id")),
    responses((status = 200, description = "The integration with its new secret", body = IntegrationWithSecretResponse),
        (status = 403, description = "Missing integrations.manage, an API key or an impersonation", body = ErrorBody),
        (status = 404, description = "No such integration in your tenant", body = ErrorBody)))]
pub async fn rotate_integration_secret(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<IntegrationWithSecretView>> {
    Ok(Json(
        integrations::rotate_secret(&state.services, &p, &meta, IntegrationId::from_uuid(id))
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrdersQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub data: Vec<OrderView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// A contact's orders from connected shops, newest first, 50 a page: the contact's order
/// timeline. Admins and agents, or API keys with `contacts:read`.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/orders", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Contact id"), OrdersQuery),
    responses((status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "Malformed id or cursor", body = ErrorBody),
        (status = 403, description = "Missing contacts.read (or the API key scope contacts:read)", body = ErrorBody),
        (status = 404, description = "No such contact in your tenant", body = ErrorBody)))]
pub async fn contact_orders(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<OrdersQuery>,
) -> ApiResult<Json<OrderPage>> {
    let page =
        integrations::orders_of_contact(&state.services, &p, ContactId::from(id), q.cursor).await?;
    Ok(Json(OrderPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// A shop's webhook delivery (WooCommerce). The `X-WC-Webhook-Signature` (base64
/// HMAC-SHA256 of the raw body, keyed with the integration's secret) is checked before the
/// body is parsed; WooCommerce's unsigned ping (`webhook_id=<n>`) is answered 200 without
/// effect. Topics `order.created` and `order.updated` record the customer as a contact and the
/// order on it, and send a rule's template; other topics are answered 200 and ignored. A
/// delivery id received before is answered 200 and does nothing. Refusals write nothing and
/// are limited per address (`PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE`).
/// What became of a shop's delivery.
#[derive(Serialize, ToSchema)]
pub struct StoreDeliveryResult {
    pub result: DeliveryResult,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryResult {
    /// The order (and its customer) was recorded.
    Recorded,
    /// This delivery id was received before; nothing was done.
    Replay,
    /// Older than the stored order (`date_modified_gmt`); nothing was changed.
    Stale,
    /// WooCommerce's unsigned ping when the webhook was saved.
    Ping,
    /// A topic Palisade does not use.
    Ignored,
}

#[utoipa::path(post, path = "/webhooks/integrations/{id}", tag = "integrations",
    params(("id" = Uuid, Path, description = "Integration id"),
        ("X-WC-Webhook-Signature" = String, Header, description = "base64(HMAC-SHA256(secret, raw body))"),
        ("X-WC-Webhook-Topic" = String, Header, description = "`order.created` or `order.updated` (others are ignored)"),
        ("X-WC-Webhook-Delivery-ID" = String, Header, description = "WooCommerce's delivery id; a repeated one does nothing")),
    request_body(content = Object, description = "A WooCommerce order (REST API v3 shape), or the ping's form body `webhook_id=<n>`", content_type = "application/json"),
    responses((status = 200, description = "Recorded, a replay, a stale delivery, a ping or an ignored topic", body = StoreDeliveryResult),
        (status = 400, description = "invalid_body: a signed delivery that is not an order, or without X-WC-Webhook-Delivery-ID", body = ErrorBody),
        (status = 401, description = "signature_invalid: missing or wrong signature, or no such integration (one answer for all three)", body = ErrorBody),
        (status = 403, description = "tenant_suspended: the integration's organisation is suspended", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 429, description = "Too many refused deliveries from this address (`rate_limited`); see Retry-After. Correctly signed deliveries are never limited", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn receive_store_webhook(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let too_large = || {
        render(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BODY_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            None,
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Ok(too_large());
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Ok(too_large());
    };
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let outcome = woocommerce::receive(
        &state.services,
        &meta,
        IntegrationId::from_uuid(id),
        Delivery {
            topic: text("x-wc-webhook-topic"),
            delivery_id: text("x-wc-webhook-delivery-id"),
            signature: text("x-wc-webhook-signature"),
            body: &bytes,
        },
    )
    .await?;
    let result = match outcome {
        woocommerce::Outcome::Ping => DeliveryResult::Ping,
        woocommerce::Outcome::Ignored => DeliveryResult::Ignored,
        woocommerce::Outcome::Replay => DeliveryResult::Replay,
        woocommerce::Outcome::Stale { .. } => DeliveryResult::Stale,
        woocommerce::Outcome::Recorded { .. } => DeliveryResult::Recorded,
    };
    Ok(Json(StoreDeliveryResult { result }).into_response())
}
