//! `/api/v1/users`: the tenant's team (and, for super admins, every tenant's).

use super::{rfc3339, ListResponse};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
// The OpenAPI attributes name the answer by its schema name (`UserView` is documented as
// `UserResponse`); `auth` and `admin` answers embed it too.
pub use palisade_core::users::UserView as UserResponse;
use palisade_core::users::{self, NewUser, UserChanges};
use palisade_domain::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(restore_user))
        .routes(routes!(transfer_ownership))
        .routes(routes!(unlock_user))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUserResponse {
    #[serde(flatten)]
    pub user: UserResponse,
    /// When no password was given: the `pal_inv_…` token the user redeems at
    /// `POST /api/v1/auth/accept-invite`. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub invite_expires_at: Option<String>,
    /// Only when the given password was accepted with a warning: `password_breached`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<super::auth::PasswordWarning>)]
    pub warnings: Vec<&'static str>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// `admin` or `agent`.
    #[schema(value_type = crate::openapi::schemas::TenantRole, inline)]
    pub role: String,
    /// Optional; without it an invitation token is returned. Under the tenant's password
    /// policy: 12 to 128 characters, not guessable.
    #[schema(min_length = 12, max_length = 128)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// `admin` or `agent`.
    #[schema(value_type = Option<crate::openapi::schemas::TenantRole>, inline)]
    pub role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnershipRequest {
    /// The current owner's password, re-entered.
    pub password: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    /// Super admins: only this tenant's users.
    pub tenant_id: Option<Uuid>,
    /// Include deleted users (admins and super admins).
    #[serde(default)]
    pub include_deleted: bool,
}

/// Users of the caller's tenant (super admins: of every tenant, or of `tenant_id`).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(ListUsersQuery),
    responses((status = 200, description = "Users, oldest first", body = ListResponse<UserResponse>),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> ApiResult<Json<ListResponse<UserResponse>>> {
    let list = users::list(
        &state.services,
        &p,
        q.tenant_id.map(TenantId::from_uuid),
        q.include_deleted,
    )
    .await?;
    Ok(Json(ListResponse {
        data: users::views(&state.services, &p, &list).await?,
    }))
}

/// Add a user to the caller's tenant (admins). Without a password, returns an invitation token.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, description = "User created", body = CreatedUserResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Email already in use (`email_taken`)", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<CreatedUserResponse>)> {
    let created = users::create(
        &state.services,
        &p,
        &meta,
        NewUser {
            email: &req.email,
            name: &req.name,
            role: &req.role,
            password: req.password.as_deref(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUserResponse {
            user: UserResponse::from(&created.user),
            invite_token: created.invite_token,
            invite_expires_at: created.invite_expires_at.map(rfc3339),
            warnings: created.warnings,
        }),
    ))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserResponse),
        (status = 404, description = "No such user in your tenant", body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserResponse>> {
    let user = users::get(&state.services, &p, UserId::from_uuid(id)).await?;
    let view = users::views(&state.services, &p, std::slice::from_ref(&user)).await?;
    Ok(Json(
        view.into_iter()
            .next()
            .unwrap_or_else(|| UserResponse::from(&user)),
    ))
}

/// Change a user's name or role (admins; see docs/permissions.md for role rules).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")), request_body = UpdateUserRequest,
    responses((status = 200, description = "The updated user", body = UserResponse),
        (status = 403, description = "Not allowed (own role, another admin's role)", body = ErrorBody),
        (status = 404, description = "No such user in your tenant", body = ErrorBody),
        (status = 409, description = "The owner's role is fixed", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserResponse>> {
    let u = users::update(
        &state.services,
        &p,
        &meta,
        UserId::from_uuid(id),
        UserChanges {
            name: req.name.as_deref(),
            role: req.role.as_deref(),
        },
    )
    .await?;
    Ok(Json(UserResponse::from(&u)))
}

/// Delete a user (soft): their sessions end at once and they can no longer sign in.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed (an admin deleting an admin)", body = ErrorBody),
        (status = 404, description = "No such user in your tenant", body = ErrorBody),
        (status = 409, description = "Yourself, or the owner before a transfer", body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    users::delete(&state.services, &p, &meta, UserId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a user deleted less than 30 days ago (super admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/restore", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "Restored", body = UserResponse),
        (status = 403, description = "Not a super admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Not deleted, or deleted too long ago", body = ErrorBody)))]
pub async fn restore_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserResponse>> {
    Ok(Json(UserResponse::from(
        &users::restore(&state.services, &p, &meta, UserId::from_uuid(id)).await?,
    )))
}

/// Make another user the tenant's owner (owner only; password re-entered).
#[utoipa::path(post, path = "/api/v1/users/{id}/transfer-ownership", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The new owner")), request_body = TransferOwnershipRequest,
    responses((status = 200, description = "The new owner", body = UserResponse),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such user in your tenant", body = ErrorBody),
        (status = 409, description = "`already_owner`, or `password_changed` by another request meanwhile", body = ErrorBody),
        (status = 422, description = "Wrong password", body = ErrorBody),
        (status = 503, description = "The server is busy checking passwords (`unavailable`); see Retry-After", body = ErrorBody)))]
pub async fn transfer_ownership(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<TransferOwnershipRequest>,
) -> ApiResult<Json<UserResponse>> {
    let u = users::transfer_ownership(
        &state.services,
        &p,
        &meta,
        UserId::from_uuid(id),
        &req.password,
    )
    .await?;
    Ok(Json(UserResponse::from(&u)))
}

/// Lift a temporary login lock on a user (admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Unlocked"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user in your tenant", body = ErrorBody)))]
pub async fn unlock_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    users::unlock(&state.services, &p, &meta, UserId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
