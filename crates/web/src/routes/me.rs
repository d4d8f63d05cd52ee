//! `GET /api/v1/me`: who am I. Served from the authentication cache, without a database query.

use super::auth::TenantSummary;
use super::rfc3339;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::AppState;
use axum::Json;
use palisade_domain::Role;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_owner: bool,
    /// Absent for super admins, who belong to no tenant.
    pub tenant_id: Option<Uuid>,
    pub tenant: Option<TenantSummary>,
    pub session_id: Uuid,
    /// True when the password has expired and must be changed before anything else.
    pub password_expired: bool,
    /// True once the user proved they read mail at `email`. With
    /// `PALISADE_EMAIL_VERIFICATION=required` an unverified user may reach only this route,
    /// `/api/v1/auth/email/verify`, `/api/v1/auth/email/resend`, logout and sessions.
    pub email_verified: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The signed-in user, their tenant and session.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, description = "The signed-in user", body = MeResponse),
        (status = 401, description = "Not signed in, or the session was revoked", body = ErrorBody),
        (status = 403, description = "The tenant is suspended", body = ErrorBody)))]
pub async fn me(Auth(p): Auth) -> ApiResult<Json<MeResponse>> {
    Ok(Json(MeResponse {
        id: p.user_id.as_uuid(),
        email: p.email.clone(),
        name: p.name.clone(),
        role: p.role,
        is_owner: p.is_owner,
        tenant_id: p.tenant.as_ref().map(|t| t.id.as_uuid()),
        tenant: p.tenant.as_ref().map(|t| TenantSummary {
            id: t.id.as_uuid(),
            name: t.name.clone(),
        }),
        session_id: p.session_id()?.as_uuid(),
        password_expired: p.password_change_only,
        email_verified: p.user.email_verified,
        created_at: rfc3339(p.user.created_at),
    }))
}
