//! `/api/v1/tenant`: the signed-in user's tenant.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::Json;
// The OpenAPI attributes name the answer by its schema name (`TenantView` is documented as
// `TenantResponse`).
use palisade_core::tenants;
pub use palisade_core::tenants::TenantView as TenantResponse;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// `modern` (NIST-style, default) or `compliance` (adds composition rules and 90-day expiry).
    #[schema(value_type = Option<palisade_domain::PasswordPolicyPreset>, inline)]
    pub password_policy: Option<String>,
    /// Who must sign in with a second factor: `off` (default), `admins` or `everyone`. Users
    /// it names who have none can only reach `/api/v1/me`, the 2FA and passkey enrolment
    /// routes and logout until they set one up (`403 2fa_enrollment_required`).
    #[schema(value_type = Option<palisade_domain::TwoFactorRequirement>, inline)]
    pub require_2fa: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_tenant, update_tenant))
}

/// The signed-in user's tenant.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, description = "The tenant", body = TenantResponse),
        (status = 403, description = "Super admins have no tenant", body = ErrorBody)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<TenantResponse>> {
    let t = tenants::get(&state.services, &p).await?;
    Ok(Json(TenantResponse::from(&t)))
}

/// Rename the tenant, change its password policy, or require a second factor (admins).
#[utoipa::path(patch, path = "/api/v1/tenant", tag = "tenant", security(("bearer" = [])),
    request_body = UpdateTenantRequest,
    responses((status = 200, description = "The updated tenant", body = TenantResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody)))]
pub async fn update_tenant(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> ApiResult<Json<TenantResponse>> {
    let t = tenants::update(
        &state.services,
        &p,
        &meta,
        req.name.as_deref(),
        req.password_policy.as_deref(),
        req.require_2fa.as_deref(),
    )
    .await?;
    Ok(Json(TenantResponse::from(&t)))
}
