//! `/api/v1/admin`: platform administration (super admins), over `palisade_core::platform`.

use super::auth::TenantSummary;
use super::tenant::TenantResponse;
use super::users::UserResponse;
use super::{rfc3339, ListResponse};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::platform;
use palisade_core::tenants::Tenant;
use palisade_domain::TenantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(suspend_tenant))
        .routes(routes!(reactivate_tenant))
        .routes(routes!(impersonate))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTenantResponse {
    #[serde(flatten)]
    pub tenant: TenantResponse,
    #[schema(format = DateTime)]
    pub suspended_at: Option<String>,
    pub suspended_reason: Option<String>,
    /// Users that are not deleted (in the tenant list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_count: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// Why; recorded in the tenant's audit log. 1 to 500 characters, not blank.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpersonateRequest {
    /// Why; recorded in the tenant's audit log, which its admins can read. 1 to 500
    /// characters, not blank.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub reason: String,
    /// Allow changes (default false: read-only).
    #[serde(default)]
    pub write: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationResponse {
    /// Acts as the tenant's owner; expires within 30 minutes; cannot be refreshed.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub session_id: Uuid,
    pub write: bool,
    pub tenant: TenantSummary,
    pub user: UserResponse,
}

fn admin_tenant(t: Tenant, n: Option<i64>) -> AdminTenantResponse {
    AdminTenantResponse {
        suspended_at: t.suspended_at.map(rfc3339),
        suspended_reason: t.suspended_reason.clone(),
        user_count: n,
        tenant: TenantResponse::from(&t),
    }
}

/// Every tenant on the platform.
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Tenants, oldest first", body = ListResponse<AdminTenantResponse>),
        (status = 403, description = "Not a super admin", body = ErrorBody)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ListResponse<AdminTenantResponse>>> {
    let list = platform::list_tenants(&state.services, &p).await?;
    Ok(Json(ListResponse {
        data: list
            .into_iter()
            .map(|(t, n)| admin_tenant(t, Some(n)))
            .collect(),
    }))
}

/// Suspend a tenant: its sessions and API keys stop working at once; its data is kept.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")), request_body = SuspendRequest,
    responses((status = 200, description = "Suspended", body = AdminTenantResponse),
        (status = 403, description = "Not a super admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Already suspended", body = ErrorBody),
        (status = 422, description = "Missing reason", body = ErrorBody)))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<SuspendRequest>,
) -> ApiResult<Json<AdminTenantResponse>> {
    let t = platform::suspend(
        &state.services,
        &p,
        &meta,
        TenantId::from_uuid(id),
        &req.reason,
    )
    .await?;
    Ok(Json(admin_tenant(t, None)))
}

/// Reactivate a suspended tenant.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/reactivate", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Active again", body = AdminTenantResponse),
        (status = 403, description = "Not a super admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Not suspended", body = ErrorBody)))]
pub async fn reactivate_tenant(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AdminTenantResponse>> {
    let t = platform::reactivate(&state.services, &p, &meta, TenantId::from_uuid(id)).await?;
    Ok(Json(admin_tenant(t, None)))
}

/// Act as the tenant's owner for support, for at most 30 minutes, under audit.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/impersonate", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")), request_body = ImpersonateRequest,
    responses((status = 201, description = "An impersonation token", body = ImpersonationResponse),
        (status = 403, description = "Not a super admin", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant is suspended", body = ErrorBody),
        (status = 422, description = "Missing reason", body = ErrorBody)))]
pub async fn impersonate(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ImpersonateRequest>,
) -> ApiResult<(StatusCode, Json<ImpersonationResponse>)> {
    let imp = platform::impersonate(
        &state.services,
        &p,
        &meta,
        TenantId::from_uuid(id),
        &req.reason,
        req.write,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ImpersonationResponse {
            access_token: imp.tokens.access_token,
            token_type: "Bearer",
            expires_in: imp.tokens.expires_in,
            session_id: imp.tokens.session_id.as_uuid(),
            write: imp.write,
            tenant: TenantSummary {
                id: imp.tenant.id.as_uuid(),
                name: imp.tenant.name.clone(),
            },
            user: UserResponse::from(&imp.owner),
        }),
    ))
}
