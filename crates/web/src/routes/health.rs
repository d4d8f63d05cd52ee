//! Liveness and readiness.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, `ready`, or `unavailable`.
    pub status: &'static str,
    /// `/readyz` only, when `PALISADE_REDIS_URL` is set: `ok` when Redis answers,
    /// `unavailable` when it does not (the node still serves: rate limits fall back to its own
    /// in-process limits and revocations to the database; realtime events between nodes are
    /// lost, each logged, until Redis answers again). Absent without Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub redis: Option<&'static str>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is up", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        redis: None,
    })
}

/// The process can serve requests: its database answers. With Redis configured the answer
/// also says whether Redis answers; the status code depends on the database only, since a node
/// without Redis still serves (on its own limits).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "The database answers", body = HealthResponse),
        (status = 503, description = "The database does not answer", body = HealthResponse)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let database = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.services.store.ping(),
    );
    let redis = async {
        match &state.services.redis {
            Some(r) => Some(if r.ping().await { "ok" } else { "unavailable" }),
            None => None,
        }
    };
    let (database, redis) = tokio::join!(database, redis);
    match database {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(HealthResponse {
                status: "ready",
                redis,
            }),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthResponse {
                status: "unavailable",
                redis,
            }),
        ),
    }
}
