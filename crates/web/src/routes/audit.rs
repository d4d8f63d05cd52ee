//! `/api/v1/audit-logs`: searching and exporting the audit log.

use super::rfc3339;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth, Meta};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::audit::log;
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
    let mut records = log::search(&state.services, &p, f).await?;
    let more = records.len() as i64 > limit;
    records.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        records.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        data: records.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub(crate) fn csv_field(v: &str) -> String {
    // Quote every field; neutralise spreadsheet formulas (OWASP CSV injection).
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

const CSV_HEADER: &str = "id,created_at,tenant_id,actor_id,actor_email,actor_role,action,target_type,target_id,ip,user_agent,request_id,metadata,before,after,seq,hash\n";

fn csv_line(r: &AuditRecordResponse) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|x| x.to_string()).unwrap_or_default();
    let fields = [
        r.id.to_string(),
        r.created_at.clone(),
        r.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        r.actor_id.map(|t| t.to_string()).unwrap_or_default(),
        opt(&r.actor_email),
        opt(&r.actor_role),
        r.action.clone(),
        opt(&r.target_type),
        opt(&r.target_id),
        opt(&r.ip),
        opt(&r.user_agent),
        opt(&r.request_id),
        r.metadata.to_string(),
        json(&r.before),
        json(&r.after),
        r.seq.map(|s| s.to_string()).unwrap_or_default(),
        opt(&r.hash),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
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
    let csv = match q.format.as_str() {
        "csv" => true,
        "jsonl" => false,
        _ => {
            return Err(AppError::BadRequest {
                code: "invalid_query",
                message: "format must be csv or jsonl".into(),
            }
            .into())
        }
    };
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
    // Pages of 500, newest first, rendered as they are read.
    let stream = futures_util::stream::unfold((Some(f), csv), move |(next, csv)| {
        let services = services.clone();
        let p = p.clone();
        async move {
            let mut f = next?;
            f.limit = 500;
            let page = match log::search(&services, &p, f.clone()).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "audit export page failed");
                    return Some((
                        Err(std::io::Error::other("export interrupted")),
                        (None, csv),
                    ));
                }
            };
            let next = if page.len() == 500 {
                page.last().map(|r| AuditFilter {
                    before_id: Some(r.id),
                    ..f
                })
            } else {
                None
            };
            let mut chunk = String::new();
            for r in page {
                let r = AuditRecordResponse::from(r);
                if csv {
                    chunk.push_str(&csv_line(&r));
                } else {
                    chunk.push_str(&serde_json::to_string(&r).unwrap_or_default());
                    chunk.push('\n');
                }
            }
            Some((Ok::<_, std::io::Error>(chunk), (next, csv)))
        }
    });
    let header_line = futures_util::stream::iter(if csv {
        vec![Ok::<_, std::io::Error>(CSV_HEADER.to_owned())]
    } else {
        vec![]
    });
    use futures_util::StreamExt;
    let body = Body::from_stream(header_line.chain(stream));
    let (ctype, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-log.{ext}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
