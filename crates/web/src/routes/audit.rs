//! `/api/v1/audit-logs`: searching and exporting the audit log.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::export::{self, CsvCell, ExportFormat, ExportRow};
use crate::extract::{ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use palisade_core::audit::log::{self, AuditFilter};
use palisade_core::audit::AuditRecordView;
use palisade_core::error::code;
use palisade_core::pagination::Page;
use palisade_core::AppError;
use palisade_domain::{AuditRecordId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(export))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An exact action (`user.deleted`) or a prefix ending in `*` (`auth.login.*`).
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// RFC 3339; records at or after.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; records before.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Free text in action, actor email, target id and metadata (case-insensitive).
    pub q: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Super admins: only this tenant.
    pub tenant_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` or `jsonl`.
    #[param(value_type = crate::openapi::schemas::ExportFormat, inline)]
    pub format: String,
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[param(format = DateTime)]
    pub from: Option<String>,
    #[param(format = DateTime)]
    pub to: Option<String>,
    pub q: Option<String>,
    pub tenant_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditRecordView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
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

#[allow(clippy::too_many_arguments)]
fn filter(
    action: Option<String>,
    actor_id: Option<Uuid>,
    target_type: Option<String>,
    target_id: Option<String>,
    from: Option<&str>,
    to: Option<&str>,
    q: Option<String>,
    tenant: Option<Uuid>,
) -> Result<AuditFilter, ApiError> {
    Ok(AuditFilter {
        tenant: tenant.map(TenantId::from),
        action: action.filter(|s| !s.is_empty()),
        actor_id: actor_id.map(UserId::from),
        target_type: target_type.filter(|s| !s.is_empty()),
        target_id: target_id.filter(|s| !s.is_empty()),
        from: time_param("from", from)?,
        to: time_param("to", to)?,
        q: q.filter(|s| !s.trim().is_empty())
            .map(|s| s.chars().take(200).collect()),
        before_id: None,
        limit: 50,
    })
}

/// Search the audit log, newest first, with cursor pagination that is stable under concurrent
/// inserts. Admins see their tenant; super admins every tenant.
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "A page of records", body = AuditPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::BadRequest {
            code: code::INVALID_QUERY,
            message: "limit must be between 1 and 500".into(),
        }
        .into());
    }
    let mut f = filter(
        q.action,
        q.actor_id,
        q.target_type,
        q.target_id,
        q.from.as_deref(),
        q.to.as_deref(),
        q.q,
        q.tenant_id,
    )?;
    f.before_id = q.cursor.map(AuditRecordId::from);
    f.limit = limit + 1;
    let records = log::search(&state.services, &p, f).await?;
    let page = Page::from_overfetch(records, limit, |r| r.id.as_uuid()).map(AuditRecordView::from);
    Ok(Json(AuditPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

impl ExportRow for AuditRecordView {
    const CSV_HEADER: &'static str = AuditRecordView::CSV_HEADER;

    fn csv_cells(&self) -> Vec<CsvCell> {
        self.csv_fields().into_iter().map(CsvCell::Text).collect()
    }

    fn cursor(&self) -> Uuid {
        self.id
    }
}

/// Export the matching records as CSV or JSON Lines, streamed newest first. Audited; at most 10
/// exports per hour per tenant.
#[utoipa::path(get, path = "/api/v1/audit-logs/export", tag = "audit", security(("bearer" = [])), params(ExportQuery),
    responses((status = 200, description = "The export (text/csv or application/x-ndjson)", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 400, description = "Unknown format or bad parameter", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "More than 10 exports in an hour", body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(&q.format)?;
    let f = filter(
        q.action,
        q.actor_id,
        q.target_type,
        q.target_id,
        q.from.as_deref(),
        q.to.as_deref(),
        q.q,
        q.tenant_id,
    )?;
    log::start_export(&state.services, &p, &meta, &q.format, &f).await?;
    let services = state.services.clone();
    Ok(export::streamed(format, "audit-log", move |cursor| {
        let services = services.clone();
        let p = p.clone();
        let f = AuditFilter {
            before_id: cursor.map(AuditRecordId::from),
            limit: export::PAGE_SIZE,
            ..f.clone()
        };
        async move {
            let page = log::search(&services, &p, f).await?;
            Ok(page.into_iter().map(AuditRecordView::from).collect())
        }
    }))
}
