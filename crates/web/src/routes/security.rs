//! `/api/v1/security`: the detection rules' alerts and the security metrics
//! (docs/security.md, "Detections and alerts").

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiOptionalJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use palisade_core::detections::api::{self, AlertQuery};
use palisade_core::detections::{AlertView, SecurityMetricsView};
use palisade_core::error::code;
use palisade_core::AppError;
use palisade_domain::SecurityAlertId;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(resolve_alert))
        .routes(routes!(security_metrics))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertListQuery {
    /// `open`, `acknowledged` or `resolved`.
    #[param(value_type = Option<palisade_core::detections::api::AlertStatusSchema>, inline)]
    pub status: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    #[param(value_type = Option<palisade_core::detections::api::AlertSeveritySchema>, inline)]
    pub severity: Option<String>,
    /// A rule name (docs/security.md), e.g. `password_spraying`.
    #[param(value_type = Option<palisade_core::detections::api::AlertRuleSchema>, inline)]
    pub rule: Option<String>,
    /// Super admins: only this tenant's alerts.
    pub tenant_id: Option<Uuid>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityAlertPage {
    pub data: Vec<AlertView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveAlertRequest {
    /// What was found or done (at most 2,000 characters).
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// RFC 3339; default: 24 hours before `to`.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; default: now.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

fn time_param(field: &'static str, v: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| {
            ApiError(AppError::BadRequest {
                code: code::INVALID_QUERY,
                message: format!("{field} must be an RFC 3339 time like 2026-01-31T12:00:00Z"),
            })
        })
}

/// Security alerts, newest first. Admins see their tenant's; super admins every tenant's and
/// the platform's (`tenant_id` narrows). Never an API key.
#[utoipa::path(get, path = "/api/v1/security/alerts", tag = "security", security(("bearer" = [])), params(AlertListQuery),
    responses((status = 200, description = "A page of alerts", body = SecurityAlertPage),
        (status = 400, description = "Unknown status, severity or rule, or a bad limit", body = ErrorBody),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AlertListQuery>,
) -> ApiResult<Json<SecurityAlertPage>> {
    let page = api::list(
        &state.services,
        &p,
        AlertQuery {
            status: q.status,
            severity: q.severity,
            rule: q.rule,
            tenant_id: q.tenant_id,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(SecurityAlertPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// Acknowledge an alert: someone is looking at it (audited: `security.alert.acknowledged`).
#[utoipa::path(post, path = "/api/v1/security/alerts/{id}/acknowledge", tag = "security", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 200, description = "The alert", body = AlertView),
        (status = 403, description = "Not an admin, an API key, or an impersonation", body = ErrorBody),
        (status = 404, description = "No such alert in your tenant", body = ErrorBody),
        (status = 409, description = "The alert is resolved", body = ErrorBody)))]
pub async fn acknowledge_alert(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AlertView>> {
    let a = api::acknowledge(&state.services, &p, &meta, SecurityAlertId::from(id)).await?;
    Ok(Json(a))
}

/// Resolve an alert, with an optional note (audited: `security.alert.resolved`). A repeat of its
/// rule on its subject afterwards opens a new alert.
#[utoipa::path(post, path = "/api/v1/security/alerts/{id}/resolve", tag = "security", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Alert id")),
    request_body(content = Option<ResolveAlertRequest>, description = "Optional"),
    responses((status = 200, description = "The alert", body = AlertView),
        (status = 403, description = "Not an admin, an API key, or an impersonation", body = ErrorBody),
        (status = 404, description = "No such alert in your tenant", body = ErrorBody),
        (status = 409, description = "The alert is already resolved", body = ErrorBody),
        (status = 422, description = "The note is too long", body = ErrorBody)))]
pub async fn resolve_alert(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiOptionalJson(req): ApiOptionalJson<ResolveAlertRequest>,
) -> ApiResult<Json<AlertView>> {
    let note = req.and_then(|r| r.note).filter(|n| !n.trim().is_empty());
    let a = api::resolve(&state.services, &p, &meta, SecurityAlertId::from(id), note).await?;
    Ok(Json(a))
}

/// Counts over a period for the tenant (super admins: the whole platform).
#[utoipa::path(get, path = "/api/v1/security/metrics", tag = "security", security(("bearer" = [])), params(MetricsQuery),
    responses((status = 200, description = "The counts", body = SecurityMetricsView),
        (status = 400, description = "Bad from/to", body = ErrorBody),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody)))]
pub async fn security_metrics(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<SecurityMetricsView>> {
    let from = time_param("from", q.from.as_deref())?;
    let to = time_param("to", q.to.as_deref())?;
    let m = api::metrics(&state.services, &p, from, to).await?;
    Ok(Json(m))
}
