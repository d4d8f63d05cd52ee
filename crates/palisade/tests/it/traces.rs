//! Traces (`PALISADE_OTLP_ENDPOINT`): one server span per request named by its route template
//! (never the raw path) with its request id and status, a child span per database transaction
//! and per outgoing HTTP request (which carries W3C `traceparent`), and `palisade serve`
//! exporting them over OTLP/HTTP (protobuf) and flushing them when it shuts down.
//!
//! The span tests install the exporting layer (`palisade::telemetry::otel_layer`, the one
//! `serve` installs) with the SDK's in-memory exporter as the default subscriber of their own
//! thread, so they run on a current-thread runtime: the test app's tasks run on that thread.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use palisade_testkit::{spawn_app_with, Db, TestApp};
use reqwest::StatusCode;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "current_thread")]
async fn a_request_is_a_server_span_with_its_transactions_as_children_sqlite() {
    request_spans(Db::Sqlite).await
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_is_a_server_span_with_its_transactions_as_children_postgres() {
    if Db::postgres_url().is_none() {
        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    }
    request_spans(Db::Postgres).await
}

/// The process's in-memory collector: the exporting layer with the SDK's in-memory exporter,
/// as a dispatcher each test sets as its own thread's default.
struct Collector {
    exporter: InMemorySpanExporter,
    dispatch: tracing::Dispatch,
    _provider: SdkTracerProvider,
    /// A second dispatcher that wants nothing. tracing caches whether a callsite is enabled
    /// when the callsite is first hit; with a single registered dispatcher it asks only the
    /// default of the thread that hits it, so a span first created on another test's thread
    /// (no subscriber) would stay disabled here for good. With two dispatchers alive for the
    /// whole process every callsite is "sometimes" and each call asks its thread's default.
    _other: tracing::Dispatch,
}

static COLLECTOR: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();

/// The collector's exporter, with its layer as this thread's subscriber until the guard drops.
/// Tests tell their spans apart by request id (or parent).
fn in_memory() -> (InMemorySpanExporter, tracing::dispatcher::DefaultGuard) {
    let c = COLLECTOR.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(palisade::telemetry::otel_layer(&provider)),
        );
        Collector {
            exporter,
            dispatch,
            _provider: provider,
            _other: tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()),
        }
    });
    (
        c.exporter.clone(),
        tracing::dispatcher::set_default(&c.dispatch),
    )
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn attr_str(span: &SpanData, key: &str) -> String {
    attr(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_default()
}

/// The finished server span of the request with this id (waiting briefly: the span ends as
/// the answer leaves the middleware).
async fn server_span(exporter: &InMemorySpanExporter, request_id: &str) -> SpanData {
    for _ in 0..100 {
        if let Some(s) = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|s| attr_str(s, "request_id") == request_id)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no server span for {request_id} in {:#?}",
        exporter.get_finished_spans().unwrap()
    );
}

fn children<'a>(spans: &'a [SpanData], parent: &SpanData) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_context.span_id())
        .collect()
}

async fn traced_app(db: Db) -> TestApp {
    spawn_app_with(db, |c| {
        // Turns the request span's OpenTelemetry fields on; the app itself exports nothing
        // (the exporter is installed by `main`), the test's layer collects the spans.
        c.otlp_endpoint = "http://127.0.0.1:4318".into();
        c.webhooks_worker_interval_ms = 0;
        c.mail_worker_interval_ms = 0;
    })
    .await
}

async fn request_spans(db: Db) {
    let (exporter, _guard) = in_memory();
    let app = traced_app(db).await;
    let id = |what: &str| format!("trace-{what}-{db:?}");

    // A write: registration commits its unit of work.
    let r = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("x-request-id", id("register"))
        .json(&serde_json::json!({
            "tenant_name": "Traced Co",
            "name": "Owner Person",
            "email": format!("owner-{db:?}@traced.example").to_lowercase(),
            "password": palisade_testkit::GOOD_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = TestApp::read(r).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = server_span(&exporter, &id("register")).await;
    assert_eq!(server.name, "POST /api/v1/auth/register");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(attr_str(&server, "route"), "/api/v1/auth/register");
    assert_eq!(attr_str(&server, "method"), "POST");
    assert_eq!(
        attr(&server, "http.response.status_code"),
        Some(&OtelValue::I64(201))
    );
    assert_eq!(server.status, Status::Unset, "a 2xx is no error");
    let spans = exporter.get_finished_spans().unwrap();
    let txs: Vec<&SpanData> = children(&spans, &server)
        .into_iter()
        .filter(|s| s.name == "db.transaction")
        .collect();
    assert!(
        txs.iter()
            .any(|t| attr_str(t, "db.transaction.outcome") == "commit"
                && attr_str(t, "db.transaction.access") == "read_write"),
        "the registration's committed transaction is a child: {txs:#?}"
    );
    let system = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgresql",
    };
    for t in &txs {
        assert_eq!(attr_str(t, "db.system.name"), system);
        assert_eq!(t.span_kind, SpanKind::Client);
        assert_eq!(
            t.span_context.trace_id(),
            server.span_context.trace_id(),
            "one trace"
        );
        assert!(t.start_time >= server.start_time && t.end_time <= server.end_time);
    }

    // A read of a contact that does not exist: the route template, never the raw path.
    let missing = uuid::Uuid::now_v7();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/contacts/{missing}")))
        .bearer_auth(&token)
        .header("x-request-id", id("missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let server = server_span(&exporter, &id("missing")).await;
    assert_eq!(server.name, "GET /api/v1/contacts/{id}");
    assert_eq!(attr_str(&server, "route"), "/api/v1/contacts/{id}");
    assert_eq!(
        attr(&server, "http.response.status_code"),
        Some(&OtelValue::I64(404))
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert!(
        children(&spans, &server)
            .iter()
            .any(|t| t.name == "db.transaction"),
        "the lookup's transaction is a child: {spans:#?}"
    );
    // No exported span holds the raw path (or even the id in it), nor any event (log lines
    // stay in the logs).
    for s in &spans {
        for kv in &s.attributes {
            let v = kv.value.as_str();
            assert!(
                !v.contains(&missing.to_string()) && !v.contains(&missing.simple().to_string()),
                "{} = {v} in {}",
                kv.key,
                s.name
            );
        }
        assert_eq!(s.events.len(), 0, "{s:#?}");
    }
    // An unmatched path is named as such.
    let r = app
        .client
        .get(app.url("/no/such/page/secret-token-123"))
        .header("x-request-id", id("unmatched"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let server = server_span(&exporter, &id("unmatched")).await;
    assert_eq!(attr_str(&server, "route"), "unmatched");
    assert!(!format!("{server:?}").contains("secret-token-123"));
}

/// A local HTTP listener that records each request (method, path, headers, body) and answers
/// `200` with an empty body (what an OTLP collector answers to a full success).
fn recording_listener() -> (String, std::sync::mpsc::Receiver<Recorded>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, tx));
        }
    });
    (base, rx)
}

#[derive(Debug)]
struct Recorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTP/1.1 with keep-alive, `Content-Length` bodies only (what both clients send).
fn serve_connection(stream: std::net::TcpStream, tx: std::sync::mpsc::Sender<Recorded>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = tx.send(Recorded {
            method,
            path,
            headers,
            body,
        });
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn outgoing_http_is_a_child_span_and_carries_traceparent() {
    let (exporter, _guard) = in_memory();
    // What `serve` sets when traces are on (a process-wide setting; no other test relies on
    // the no-op default, since without a trace context nothing is injected anyway).
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let (base, rx) = recording_listener();
    use palisade_core::safe_http::{self, HeaderMap, Method, OutboundPolicy, TargetUrl};
    let policy = OutboundPolicy::development();
    let target = TargetUrl::parse(&format!("{base}/hook?token=s3cret"), &policy).unwrap();
    let parent = tracing::info_span!(target: "palisade::test", "request", request_id = "out-1");
    let response = tracing::Instrument::instrument(
        safe_http::send(
            &policy,
            Method::POST,
            &target,
            HeaderMap::new(),
            b"{}".to_vec(),
        ),
        parent.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status.as_u16(), 200);
    drop(parent);
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let parent = spans
        .iter()
        .find(|s| attr_str(s, "request_id") == "out-1")
        .unwrap();
    let client = spans
        .iter()
        .find(|s| s.parent_span_id == parent.span_context.span_id())
        .unwrap();
    assert_eq!(client.name, "POST");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, parent.span_context.span_id());
    assert_eq!(
        attr(client, "http.response.status_code"),
        Some(&OtelValue::I64(200))
    );
    assert_eq!(attr_str(client, "server.address"), "127.0.0.1");
    assert!(
        !format!("{client:?}").contains("s3cret") && !format!("{client:?}").contains("/hook"),
        "no path or query in the span: {client:?}"
    );
    // W3C: 00-<trace id>-<span id of the client span>-<flags>.
    let traceparent = seen.header("traceparent").expect("traceparent sent");
    assert_eq!(
        traceparent,
        format!(
            "00-{}-{}-01",
            client.span_context.trace_id(),
            client.span_context.span_id()
        )
    );
    // A refused request is an error span with the rule's code.
    let refused = TargetUrl::parse(&format!("{base}/hook"), &policy).unwrap();
    let parent = tracing::info_span!(target: "palisade::test", "request", request_id = "out-2");
    let err = tracing::Instrument::instrument(
        safe_http::send(
            &OutboundPolicy::strict(),
            Method::POST,
            &refused,
            HeaderMap::new(),
            Vec::new(),
        ),
        parent.clone(),
    )
    .await
    .unwrap_err();
    drop(parent);
    let spans = exporter.get_finished_spans().unwrap();
    let parent = spans
        .iter()
        .find(|s| attr_str(s, "request_id") == "out-2")
        .unwrap();
    let failed = spans
        .iter()
        .find(|s| s.parent_span_id == parent.span_context.span_id())
        .unwrap();
    assert_eq!(attr_str(failed, "error.type"), err.code());
    assert!(matches!(failed.status, Status::Error { .. }));
}

/// The clients made for one third party (Have I Been Pwned here; Meta's Graph API and media
/// downloads go through the same `safe_http::traced_send`) are child spans too, with the host
/// and status but not the path (the password hash prefix), and give away no trace context.
#[tokio::test(flavor = "current_thread")]
async fn third_party_requests_are_child_spans_without_traceparent() {
    use palisade_core::auth::breach::{BreachChecker, HibpRangeClient};
    let (exporter, _guard) = in_memory();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let (base, rx) = recording_listener();
    let hibp = HibpRangeClient::new(&format!("{base}/range"), Duration::from_secs(5));
    let parent = tracing::info_span!(target: "palisade::test", "request", request_id = "hibp-1");
    let breached =
        tracing::Instrument::instrument(hibp.is_breached("a password to look up"), parent.clone())
            .await
            .unwrap();
    assert!(!breached, "the listener's empty range holds no suffix");
    drop(parent);
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(seen.path.starts_with("/range/"), "{seen:?}");
    assert_eq!(seen.header("traceparent"), None, "{seen:?}");
    let spans = exporter.get_finished_spans().unwrap();
    let parent = spans
        .iter()
        .find(|s| attr_str(s, "request_id") == "hibp-1")
        .unwrap();
    let client = spans
        .iter()
        .find(|s| s.parent_span_id == parent.span_context.span_id())
        .expect("an http.client child span");
    assert_eq!(client.name, "GET");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(attr_str(client, "server.address"), "127.0.0.1");
    assert_eq!(
        attr(client, "http.response.status_code"),
        Some(&OtelValue::I64(200))
    );
    let prefix = seen.path.trim_start_matches("/range/");
    assert!(
        !format!("{client:?}").contains(prefix),
        "no path in the span: {client:?}"
    );
}

#[tokio::test]
async fn serve_exports_traces_over_otlp_http_and_flushes_them_on_shutdown() {
    let (collector, rx) = recording_listener();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, _, logs) = crate::metrics::serve(
        dir.path(),
        &[
            ("PALISADE_LOG_FORMAT", "json"),
            ("PALISADE_OTLP_ENDPOINT", collector.as_str()),
            ("PALISADE_OTLP_SERVICE_NAME", "palisade-e2e"),
        ],
    );
    let missing = uuid::Uuid::now_v7();
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/contacts/{missing}"))
        .header("x-request-id", "otlp-e2e-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The log line and the span share the request span: the line names the route too.
    let lines = crate::metrics::lines_within(&logs, Duration::from_millis(500));
    let line: serde_json::Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "otlp-e2e-1")
        .unwrap_or_else(|| panic!("no line for the request in {lines:#?}"));
    assert_eq!(line["span"]["route"], "/api/v1/contacts/{id}", "{line}");
    assert_eq!(
        line["span"]["otel.name"], "GET /api/v1/contacts/{id}",
        "{line}"
    );
    assert_eq!(line["status"], 401, "{line}");
    // A graceful shutdown flushes the batch (the batch delay is 5 s; this comes sooner).
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "palisade serve exited with {code}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "palisade serve did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posts: Vec<Recorded> = rx.try_iter().collect();
    let export = posts
        .iter()
        .find(|p| {
            p.body
                .windows(b"otlp-e2e-1".len())
                .any(|w| w == b"otlp-e2e-1")
        })
        .unwrap_or_else(|| panic!("no export holds the request's span: {posts:#?}"));
    assert_eq!(export.method, "POST");
    assert_eq!(export.path, "/v1/traces");
    assert_eq!(
        export.header("content-type"),
        Some("application/x-protobuf")
    );
    let has = |needle: &str| {
        export
            .body
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(has("GET /api/v1/contacts/{id}"), "the span's name");
    assert!(has("palisade-e2e"), "the service name");
    assert!(!has(&missing.to_string()), "the raw path is never exported");
}

#[test]
fn check_config_and_serve_check_the_otlp_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = |command: &str, endpoint: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg(command)
            .env_clear()
            .env("PALISADE_DATA_DIR", dir.path())
            .env("PALISADE_LISTEN", "127.0.0.1:0")
            .env("PALISADE_OTLP_ENDPOINT", endpoint)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run("check-config", "");
    assert!(ok, "{text}");
    assert!(text.contains("# traces: off"), "{text}");
    let (ok, text) = run("check-config", "http://127.0.0.1:4318/");
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "# traces: OTLP/HTTP to http://127.0.0.1:4318/v1/traces as service \"palisade\""
        ),
        "{text}"
    );
    for bad in ["127.0.0.1:4318", "grpc://collector:4317"] {
        let (ok, text) = run("check-config", bad);
        assert!(!ok, "{bad}: {text}");
        assert!(text.contains("PALISADE_OTLP_ENDPOINT"), "{bad}: {text}");
        // `serve` refuses to start with it too, saying why.
        let (ok, text) = run("serve", bad);
        assert!(!ok, "{bad}: {text}");
        assert!(text.contains("PALISADE_OTLP_ENDPOINT"), "{bad}: {text}");
    }
    let (ok, text) = run("check-config", "https://ops:hunter2@otel.example.com");
    assert!(!ok);
    assert!(
        text.contains("OTEL_EXPORTER_OTLP_HEADERS") && !text.contains("hunter2"),
        "{text}"
    );
}
