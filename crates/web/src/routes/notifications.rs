//! `/api/v1/notifications`: the signed-in user's own in-app notifications (never an API key's).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::Json;
// The OpenAPI attributes name the answer by its schema name (`NotificationView` is documented
// as `NotificationResponse`).
use palisade_core::notifications::{self, NotificationView as NotificationResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(mark_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    /// `true`: only notifications not yet read.
    pub unread: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub data: Vec<NotificationResponse>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(NotificationsQuery),
    responses((status = 200, description = "A page of the caller's notifications", body = NotificationPage),
        (status = 400, description = "Malformed query (invalid_query)", body = ErrorBody),
        (status = 403, description = "An API key (api_key_not_allowed) or a super admin", body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<NotificationsQuery>,
) -> ApiResult<Json<NotificationPage>> {
    let page = notifications::list(
        &state.services,
        &p,
        q.unread.unwrap_or(false),
        q.cursor.map(Into::into),
        q.limit,
    )
    .await?;
    Ok(Json(NotificationPage {
        data: page.data.iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Mark one of the caller's notifications read (idempotent).
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Notification id")),
    responses((status = 200, description = "The notification, read", body = NotificationResponse),
        (status = 403, description = "An API key (api_key_not_allowed) or a super admin", body = ErrorBody),
        (status = 404, description = "No such notification of yours", body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<NotificationResponse>> {
    let n = notifications::mark_read(&state.services, &p, &meta, id.into()).await?;
    Ok(Json((&n).into()))
}
