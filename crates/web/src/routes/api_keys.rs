//! `/api/v1/api-keys`: scoped keys for integrations (admins).

use super::ListResponse;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiOptionalJson, ApiPath, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
// The OpenAPI attributes name the answer by its schema name (`ApiKeyView` is documented as
// `ApiKeyResponse`).
use palisade_core::api_keys::{self, ApiKeyView as ApiKeyResponse, NewApiKey};
use palisade_core::AppError;
use palisade_domain::ApiKeyId;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, update_key, delete_key))
        .routes(routes!(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Scope names (`contacts:read`, …) or groups (`read_only`, `full_access`).
    #[schema(value_type = Vec<palisade_domain::Scope>, inline, min_items = 1)]
    pub scopes: Vec<String>,
    /// RFC 3339, in the future; the key stops working then.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Addresses or CIDR ranges the key may be used from; absent means anywhere.
    pub allowed_ips: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// Replaces the scopes.
    #[schema(value_type = Option<Vec<palisade_domain::Scope>>, inline, min_items = 1)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKeyRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    pub api_key: ApiKeyResponse,
    /// The full key. Shown only in this response; store it now.
    pub key: String,
}

/// Create an API key (admins). The full key is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateApiKeyRequest,
    responses((status = 201, description = "Created", body = CreatedApiKeyResponse),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 422, description = "Unknown scopes, bad addresses or expiry", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKeyResponse>)> {
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| {
            AppError::field(
                "expires_at",
                "must be an RFC 3339 time like 2027-01-31T00:00:00Z",
            )
        })?;
    let (key, secret) = api_keys::create(
        &state.services,
        &p,
        &meta,
        NewApiKey {
            name: req.name,
            scopes: req.scopes,
            expires_at,
            allowed_ips: req.allowed_ips,
        },
    )
    .await?;
    let now = state.services.now();
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            api_key: ApiKeyResponse::new(&key, now),
            key: secret,
        }),
    ))
}

/// The tenant's API keys (never the secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, description = "Keys, oldest first", body = ListResponse<ApiKeyResponse>),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<ApiKeyResponse>>> {
    let now = state.services.now();
    let keys = api_keys::list(&state.services, &p).await?;
    Ok(Json(ListResponse {
        data: keys.iter().map(|k| ApiKeyResponse::new(k, now)).collect(),
    }))
}

/// One API key.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 200, description = "The key", body = ApiKeyResponse),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such key in your tenant", body = ErrorBody)))]
pub async fn get_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ApiKeyResponse>> {
    let k = api_keys::get(&state.services, &p, ApiKeyId::from(id)).await?;
    Ok(Json(ApiKeyResponse::new(&k, state.services.now())))
}

/// Rename a key or change its scopes.
#[utoipa::path(patch, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")), request_body = UpdateApiKeyRequest,
    responses((status = 200, description = "The updated key", body = ApiKeyResponse),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such key in your tenant", body = ErrorBody),
        (status = 422, description = "Unknown scopes or bad name", body = ErrorBody)))]
pub async fn update_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateApiKeyRequest>,
) -> ApiResult<Json<ApiKeyResponse>> {
    let k = api_keys::update(
        &state.services,
        &p,
        &meta,
        ApiKeyId::from(id),
        req.name.as_deref(),
        req.scopes.as_deref(),
    )
    .await?;
    Ok(Json(ApiKeyResponse::new(&k, state.services.now())))
}

/// Revoke a key: it stops working on every node within a second. The record is kept.
#[utoipa::path(post, path = "/api/v1/api-keys/{id}/revoke", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")), request_body(content = Option<RevokeApiKeyRequest>, description = "Optional"),
    responses((status = 200, description = "The revoked key", body = ApiKeyResponse),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such key in your tenant", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiOptionalJson(req): ApiOptionalJson<RevokeApiKeyRequest>,
) -> ApiResult<Response> {
    let reason = req.and_then(|r| r.reason);
    let k = api_keys::revoke(
        &state.services,
        &p,
        &meta,
        ApiKeyId::from(id),
        reason.as_deref(),
    )
    .await?;
    Ok(Json(ApiKeyResponse::new(&k, state.services.now())).into_response())
}

/// Delete a key (it stops working at once; the audit log keeps its history).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such key in your tenant", body = ErrorBody)))]
pub async fn delete_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    api_keys::delete(&state.services, &p, &meta, ApiKeyId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
