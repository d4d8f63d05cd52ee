//! `/api/v1/audit-logs`: searching and exporting the audit log.

use super::rfc3339;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::export::{self, CsvCell, ExportFormat, ExportRow};
use crate::extract::{ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use palisade_core::audit::log;
use palisade_core::pagination::Page;
use palisade_core::records::{AuditFilter, AuditRecord};
use palisade_core::AppError;
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
pub struct AuditRecordResponse {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// Position in the tenant's hash chain.
    pub seq: Option<i64>,
    /// SHA-256 linking this record to the previous one (see `palisade audit verify`).
    pub hash: Option<String>,
}

impl From<AuditRecord> for AuditRecordResponse {
    fn from(r: AuditRecord) -> Self {
        AuditRecordResponse {
            id: r.id,
            tenant_id: r.tenant_id,
            created_at: rfc3339(r.created_at),
            actor_id: r.actor_id,
            actor_email: r.actor_email,
            actor_role: r.actor_role,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            metadata: r.metadata.0,
            before: r.before.map(|v| v.0),
            after: r.after.map(|v| v.0),
            seq: r.seq,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditRecordResponse>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

fn time_param(field: &'static str, v: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| {
            ApiError(AppError::BadRequest {
                code: "invalid_query",
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
        tenant,
        action: action.filter(|s| !s.is_empty()),
        actor_id,
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
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::BadRequest {
            code: "invalid_query",
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
    f.before_id = q.cursor;
    f.limit = limit + 1;
    let records = log::search(&state.services, &p, f).await?;
    let page = Page::from_overfetch(records, limit, |r| r.id).map(AuditRecordResponse::from);
    Ok(Json(AuditPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

impl ExportRow for AuditRecordResponse {
    const CSV_HEADER: &'static str = "id,created_at,tenant_id,actor_id,actor_email,actor_role,action,target_type,target_id,ip,user_agent,request_id,metadata,before,after,seq,hash";

    fn csv_cells(&self) -> Vec<CsvCell> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let json =
            |v: &Option<serde_json::Value>| v.as_ref().map(|x| x.to_string()).unwrap_or_default();
        [
            self.id.to_string(),
            self.created_at.clone(),
            self.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
            self.actor_id.map(|t| t.to_string()).unwrap_or_default(),
            opt(&self.actor_email),
            opt(&self.actor_role),
            self.action.clone(),
            opt(&self.target_type),
            opt(&self.target_id),
            opt(&self.ip),
            opt(&self.user_agent),
            opt(&self.request_id),
            self.metadata.to_string(),
            json(&self.before),
            json(&self.after),
            self.seq.map(|s| s.to_string()).unwrap_or_default(),
            opt(&self.hash),
        ]
        .into_iter()
        .map(CsvCell::Text)
        .collect()
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
        (status = 401, description = "Not signed in", body = ErrorBody),
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
            before_id: cursor,
            limit: export::PAGE_SIZE,
            ..f.clone()
        };
        async move {
            let page = log::search(&services, &p, f).await?;
            Ok(page.into_iter().map(AuditRecordResponse::from).collect())
        }
    }))
}
