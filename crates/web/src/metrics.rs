//! Prometheus metrics over HTTP: the recorder (installed once per process), the per-request
//! measurements taken by the outermost middleware, and the `/metrics` router that
//! `palisade serve` runs on its own listener (`PALISADE_METRICS_LISTEN`), never on the public
//! port — the metrics describe the whole server, so only the operator's network may read them.
//!
//! Requests are labelled by the route template axum matched (`/api/v1/contacts/{id}`), read
//! from [`MatchedPath`], which the router sets before any layer of `Router::layer` runs; a path
//! no route matched is `route="unmatched"`. Methods outside the standard set are `other`. So the
//! number of series is bounded by the router, whatever clients send. The names and the other
//! metrics are in `palisade_core::metrics`; docs/operations.md describes them all.

use crate::AppState;
use axum::extract::{MatchedPath, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::{counter, histogram};
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use palisade_core::metrics::{
    HTTP_REQUESTS, HTTP_REQUEST_DURATION, HTTP_SLOW_REQUESTS, UNMATCHED_ROUTE,
};
use palisade_core::Services;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Bucket bounds of the request duration histogram, in seconds: 1 ms to 10 s, dense where an
/// API answer normally falls.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder, once: later calls (another application in the
/// same process, as in the tests) share it. Until this runs every measurement is a no-op.
pub fn install() -> Result<PrometheusHandle, String> {
    if let Some(handle) = RECORDER.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
            &DURATION_BUCKETS,
        )
        .map_err(|e| format!("metrics: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    // Two callers racing here: the loser's recorder is dropped unused.
    if RECORDER.set(handle.clone()).is_err() {
        return RECORDER
            .get()
            .cloned()
            .ok_or_else(|| "metrics: recorder lost".to_owned());
    }
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("metrics: another recorder is installed: {e}"))?;
    palisade_core::metrics::describe();
    process_collector().describe();
    Ok(handle)
}

/// Drains the histograms' samples into their buckets every few seconds, so memory stays flat
/// however long nobody scrapes.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Whether a recorder is installed (metrics are on in this process).
fn enabled() -> bool {
    RECORDER.get().is_some()
}

/// The process metrics (CPU seconds, resident memory, open file descriptors, threads, start
/// time), under their usual Prometheus names (`process_…`).
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The `method` label: the standard methods by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `route` label of a request: the template it matched, or `unmatched`.
pub fn route_label(matched: Option<&MatchedPath>) -> &str {
    matched.map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

/// Counts and times one answered request; `slow` marks it as slower than the threshold.
pub fn record_request(
    method: &Method,
    route: &str,
    status: StatusCode,
    elapsed: Duration,
    slow: bool,
) {
    if !enabled() {
        return;
    }
    let method = method_label(method);
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.to_owned(), "status" => status.as_str().to_owned())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route.to_owned())
        .record(elapsed.as_secs_f64());
    if slow {
        counter!(HTTP_SLOW_REQUESTS, "route" => route.to_owned()).increment(1);
    }
}

/// What the metrics listener serves.
struct Exporter {
    handle: PrometheusHandle,
    services: Services,
}

/// The metrics listener's router: `GET /metrics` in the Prometheus text format; every other
/// path is a 404.
pub fn router(handle: PrometheusHandle, state: &AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(Exporter {
            handle,
            services: state.services.clone(),
        }))
}

/// Samples the gauges, then renders. One scrape at a time: the gauges are process-wide, so two
/// applications in one process (the tests) must not interleave their samples with a render.
async fn scrape(State(e): State<Arc<Exporter>>) -> Response {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    // Without the database the queue gauges keep their last values; the rest still renders.
    if let Err(err) = palisade_core::metrics::sample(&e.services).await {
        tracing::warn!(error = %err, "metrics: could not sample the queue depths");
    }
    process_collector().collect();
    e.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
        assert_eq!(route_label(None), "unmatched");
    }
}
