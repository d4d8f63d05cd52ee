//! `/api/v1/analytics/*`: what the tenant's team did over a range of local days or weeks —
//! messages, conversations, response and resolution times, per-agent workload, pipeline value
//! by stage and won / lost deals — computed by the database. Members (`analytics.read`) and API
//! keys with `analytics:read`.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Auth};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use palisade_core::analytics::{
    self, AgentsView, AnalyticsQuery, CampaignsAnalyticsView, ConversationsView, DealsView,
    OverviewView,
};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::analytics::{
    AgentsView as AnalyticsAgentsResponse, CampaignsAnalyticsView as AnalyticsCampaignsResponse,
    ConversationsView as AnalyticsConversationsResponse, DealsView as AnalyticsDealsResponse,
    OverviewView as AnalyticsOverviewResponse,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(conversations))
        .routes(routes!(agents))
        .routes(routes!(deals))
        .routes(routes!(campaigns))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// Start (included): an RFC 3339 time, or a date `YYYY-MM-DD` (its local midnight in `tz`).
    /// Default: the local midnight 30 days back (the last 30 local days, today's included).
    pub from: Option<String>,
    /// End (excluded): an RFC 3339 time or a date; after `from`, at most 366 days later.
    /// Default: now.
    pub to: Option<String>,
    /// `day` (default) or `week` (ISO weeks, starting on Monday).
    pub interval: Option<String>,
    /// Only this WhatsApp number's messages and conversations (not applied to deals).
    pub connection_id: Option<Uuid>,
    /// The IANA time zone the buckets are local days or weeks of; default `UTC`.
    pub tz: Option<String>,
}

impl From<RangeQuery> for AnalyticsQuery {
    fn from(q: RangeQuery) -> Self {
        AnalyticsQuery {
            from: q.from,
            to: q.to,
            interval: q.interval,
            connection_id: q.connection_id,
            tz: q.tz,
        }
    }
}

/// Totals and local day or week buckets of messages in and out, new and resolved
/// conversations; first-response and resolution times (median, p90); deals won and lost.
#[utoipa::path(get, path = "/api/v1/analytics/overview", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, description = "The overview", body = AnalyticsOverviewResponse),
        (status = 403, description = "Missing analytics.read (or the API key scope analytics:read)", body = ErrorBody),
        (status = 422, description = "validation_failed naming from, to (missing, not a time or date, not after from, more than 366 days), interval, tz (not an IANA name) or connection_id (not a number of your tenant)", body = ErrorBody),
        (status = 400, description = "invalid_query: a malformed connection_id or an unknown parameter", body = ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<OverviewView>> {
    Ok(Json(
        analytics::overview(&state.services, &p, &q.into()).await?,
    ))
}

/// New and resolved conversations (totals and buckets), the ones created in the range by
/// their status now, first-response and resolution times.
#[utoipa::path(get, path = "/api/v1/analytics/conversations", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, description = "Conversations", body = AnalyticsConversationsResponse),
        (status = 403, description = "Missing analytics.read (or the API key scope analytics:read)", body = ErrorBody),
        (status = 422, description = "validation_failed naming from, to, interval, tz or connection_id", body = ErrorBody),
        (status = 400, description = "invalid_query: a malformed connection_id or an unknown parameter", body = ErrorBody)))]
pub async fn conversations(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<ConversationsView>> {
    Ok(Json(
        analytics::conversations(&state.services, &p, &q.into()).await?,
    ))
}

/// Every member's workload: conversations assigned and resolved, messages sent, first-response
/// time.
#[utoipa::path(get, path = "/api/v1/analytics/agents", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, description = "Per agent", body = AnalyticsAgentsResponse),
        (status = 403, description = "Missing analytics.read (or the API key scope analytics:read)", body = ErrorBody),
        (status = 422, description = "validation_failed naming from, to, interval, tz or connection_id", body = ErrorBody),
        (status = 400, description = "invalid_query: a malformed connection_id or an unknown parameter", body = ErrorBody)))]
pub async fn agents(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<AgentsView>> {
    Ok(Json(
        analytics::agents(&state.services, &p, &q.into()).await?,
    ))
}

/// Every pipeline stage with the count and value (by currency) of the deals in it now, and the
/// value of the deals won and lost in the range.
#[utoipa::path(get, path = "/api/v1/analytics/deals", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, description = "Pipeline value", body = AnalyticsDealsResponse),
        (status = 403, description = "Missing analytics.read (or the API key scope analytics:read)", body = ErrorBody),
        (status = 422, description = "validation_failed naming from, to, interval, tz or connection_id", body = ErrorBody),
        (status = 400, description = "invalid_query: a malformed connection_id or an unknown parameter", body = ErrorBody)))]
pub async fn deals(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<DealsView>> {
    Ok(Json(
        analytics::deals(&state.services, &p, &q.into()).await?,
    ))
}

/// The campaigns started in the range (of one connection when given), each with its funnel:
/// targeted, skipped, sent (at least), delivered (at least), read, failed, replied.
#[utoipa::path(get, path = "/api/v1/analytics/campaigns", tag = "analytics", security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, description = "Campaign funnels", body = AnalyticsCampaignsResponse),
        (status = 403, description = "Missing analytics.read (or the API key scope analytics:read)", body = ErrorBody),
        (status = 422, description = "validation_failed naming from, to, interval, tz or connection_id", body = ErrorBody),
        (status = 400, description = "invalid_query: a malformed connection_id or an unknown parameter", body = ErrorBody)))]
pub async fn campaigns(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<CampaignsAnalyticsView>> {
    Ok(Json(
        analytics::campaigns(&state.services, &p, &q.into()).await?,
    ))
}
