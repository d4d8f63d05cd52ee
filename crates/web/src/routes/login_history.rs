//! `GET /api/v1/auth/login-history` and `GET /api/v1/users/{id}/login-history`: sign-in
//! attempts, newest first (`core::auth::login_history`).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use palisade_core::auth::login_history::{self, LoginAttemptView, PageRequest};
use palisade_domain::UserId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(own_login_history))
        .routes(routes!(user_login_history))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoginHistoryQuery {
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

impl From<LoginHistoryQuery> for PageRequest {
    fn from(q: LoginHistoryQuery) -> Self {
        PageRequest {
            limit: q.limit,
            cursor: q.cursor,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginHistoryPage {
    pub data: Vec<LoginAttemptView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<Uuid>,
}

/// Your own sign-in attempts (successful and refused), newest first. Kept 180 days.
#[utoipa::path(get, path = "/api/v1/auth/login-history", tag = "auth", security(("bearer" = [])),
    params(LoginHistoryQuery),
    responses((status = 200, description = "A page of attempts", body = LoginHistoryPage),
        (status = 400, description = "Bad query parameter (`invalid_query`)", body = ErrorBody),
        (status = 403, description = "An API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody)))]
pub async fn own_login_history(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<LoginHistoryQuery>,
) -> ApiResult<Json<LoginHistoryPage>> {
    let page = login_history::list_own(&state.services, &p, q.into()).await?;
    Ok(Json(LoginHistoryPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// A user's sign-in attempts, newest first (admins of the user's tenant, super admins).
#[utoipa::path(get, path = "/api/v1/users/{id}/login-history", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), LoginHistoryQuery),
    responses((status = 200, description = "A page of attempts", body = LoginHistoryPage),
        (status = 400, description = "Bad query parameter (`invalid_query`)", body = ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`), an API key (`api_key_not_allowed`) or an impersonation (`impersonation_forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user in your tenant", body = ErrorBody)))]
pub async fn user_login_history(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LoginHistoryQuery>,
) -> ApiResult<Json<LoginHistoryPage>> {
    let page =
        login_history::list_for_user(&state.services, &p, UserId::from_uuid(id), q.into()).await?;
    Ok(Json(LoginHistoryPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}
