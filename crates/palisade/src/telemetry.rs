//! Logs and traces: the `tracing` subscriber of the `palisade` binary and, when
//! `PALISADE_OTLP_ENDPOINT` is set, an OpenTelemetry layer that exports the same spans as
//! traces over OTLP/HTTP (protobuf).
//!
//! One span is both things: the `request` span opened by `palisade_web::middleware` carries the
//! per-request log line (request id, method, route template) and is the trace's server span;
//! database transactions (`db.transaction`, opened with every `palisade_store::Tx`) and outgoing
//! HTTP (`http.client`, in `palisade_core::safe_http`) are its children, at debug level so that
//! they cost nothing while traces are off (no layer wants them, so their callsites are disabled).
//!
//! What leaves the process: only spans of Palisade's own crates, never log events. Spans hold
//! route templates, ids, statuses and host names — never a raw path, a query string, a body or
//! a credential — whereas an event's message may carry details (the raw path of the request line,
//! an error's cause) that a trace backend, often a third-party service, should not receive.
//!
//! Export is batched on the Tokio runtime (the SDK's async-runtime batch processor: its default
//! processor runs on a thread of its own without a runtime, where the async `reqwest` client
//! cannot run). [`Telemetry::shutdown`] flushes what is queued; `palisade serve` calls it after
//! the server has drained.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The path OTLP/HTTP collectors receive traces on, appended to `PALISADE_OTLP_ENDPOINT`.
pub const TRACES_PATH: &str = "/v1/traces";

/// Where traces go, validated from `PALISADE_OTLP_ENDPOINT` and `PALISADE_OTLP_SERVICE_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The full URL traces are POSTed to (`…/v1/traces`).
    pub traces_url: String,
    /// `service.name` of every exported span.
    pub service_name: String,
}

impl OtlpSettings {
    /// `None` when `endpoint` is blank (traces off). The endpoint is the collector's base URL
    /// (`http://collector:4318`, like `OTEL_EXPORTER_OTLP_ENDPOINT`); `/v1/traces` is appended
    /// unless the URL already ends with it. Credentials belong in `OTEL_EXPORTER_OTLP_HEADERS`,
    /// never in the URL (which `check-config` prints).
    pub fn parse(endpoint: &str, service_name: &str) -> Result<Option<OtlpSettings>, String> {
        let endpoint = endpoint.trim();
        if endpoint.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| {
            format!(
                "PALISADE_OTLP_ENDPOINT={endpoint:?} {why} (expected the collector's base URL, like http://127.0.0.1:4318; empty turns traces off)"
            )
        };
        let url = url::Url::parse(endpoint).map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "PALISADE_OTLP_ENDPOINT must not hold credentials (they would be printed and logged); \
                 give the collector's headers in OTEL_EXPORTER_OTLP_HEADERS instead"
                    .into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("has a query or fragment"));
        }
        let base = url.as_str().trim_end_matches('/');
        let traces_url = if base.ends_with(TRACES_PATH) {
            base.to_owned()
        } else {
            format!("{base}{TRACES_PATH}")
        };
        let service_name = service_name.trim();
        if service_name.is_empty() {
            return Err("PALISADE_OTLP_SERVICE_NAME must not be empty".into());
        }
        Ok(Some(OtlpSettings {
            traces_url,
            service_name: service_name.to_owned(),
        }))
    }
}

/// Builds the OTLP exporter and its tracer provider, and makes W3C `traceparent` the format
/// outgoing requests carry. Call within a Tokio runtime.
pub fn otlp_provider(settings: &OtlpSettings) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    // The exporter's reqwest 0.13 client is built without a TLS provider of its own (see
    // Cargo.toml): it uses the process default, ring, as the rest of the server does. An `Err`
    // means a default is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .build()
        .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// The layer that turns Palisade's spans into OpenTelemetry spans of `provider`: spans only
/// (no events), of Palisade's crates only, down to debug level.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("palisade"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(
            filter_fn(|m| {
                m.is_span() && *m.level() <= Level::DEBUG && m.target().starts_with("palisade")
            })
            .with_max_level_hint(LevelFilter::DEBUG),
        )
}

/// What [`init`] set up and [`Telemetry::shutdown`] ends.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes queued spans to the collector and stops the exporter (a no-op without traces).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK blocks the calling thread until its batch task has flushed; that task runs on
        // this runtime, so wait on a blocking thread, not on a runtime worker.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not flush the last traces"),
            Err(e) => tracing::warn!(error = %e, "could not flush the last traces"),
        }
    }
}

/// Whether log lines are JSON: `PALISADE_LOG_FORMAT=json`, or by default in production
/// (`PALISADE_ENV=production`).
pub fn json_logs() -> bool {
    let production = std::env::var("PALISADE_ENV").is_ok_and(|e| e == "production");
    std::env::var("PALISADE_LOG_FORMAT").map_or(production, |f| f == "json")
}

/// Installs the global subscriber: log lines to stderr (JSON or text) filtered by
/// `PALISADE_LOG`, and with `otlp` the trace exporter. Call within a Tokio runtime. An exporter
/// that cannot be set up is an error (nothing is installed): traces asked for must work.
pub fn init(json: bool, otlp: Option<&OtlpSettings>) -> Result<Telemetry, String> {
    let provider = otlp.map(otlp_provider).transpose()?;
    let filter = EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal: a pipe (a log shipper, a file) gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    tracing_subscriber::registry()
        .with(fmt)
        .with(provider.as_ref().map(otel_layer))
        .init();
    if let Some(s) = otlp {
        tracing::info!(
            endpoint = %s.traces_url, service = %s.service_name,
            "traces are exported over OTLP/HTTP to {}", s.traces_url
        );
    }
    Ok(Telemetry { provider })
}
