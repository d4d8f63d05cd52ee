//! Metrics: `GET /metrics` on a listener of its own (never the public port), requests labelled
//! by route template, sign-ins, deliveries and queue depths counted, no label that names a
//! tenant, a user or a client; and `palisade serve` writing one log line per request.
//!
//! The recorder is one per process, shared by every test app here (and by other tests' traffic
//! once installed), so counters are read as deltas of at least what a test did; gauges are
//! sampled from the scraped app's own database and node at scrape time, so they are exact.

use palisade_testkit::{spawn_app, spawn_app_with, Db, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

both!(
    metrics_are_served_on_their_own_listener_by_route_template,
    sign_ins_and_lockouts_are_counted_by_result,
    queue_depth_counts_the_rows_waiting_in_each_queue,
    no_label_names_a_tenant_a_user_or_an_address,
);

async fn metrics_app(db: Db) -> TestApp {
    spawn_app_with(db, |c| {
        c.metrics_listen = "127.0.0.1:0".into();
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.mail_worker_interval_ms = 0;
        // Loopback is a trusted proxy, so requests can claim client addresses (which must
        // never show in a label).
        c.trusted_proxies = "127.0.0.1".into();
    })
    .await
}

/// One exposition: each sample line as (name, labels) → value, plus the raw text.
pub(crate) struct Scrape {
    pub(crate) text: String,
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Scrape {
    /// The value of the sample `name` with exactly these labels (0 when absent).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        self.samples
            .get(&(name.to_owned(), l))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Parses the Prometheus text format (the subset the exporter writes: no escapes in values
/// beyond `\"` and `\\`, which our values never contain).
fn parse(text: &str) -> BTreeMap<(String, Vec<(String, String)>), f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                // Values hold no `",` sequence (templates, results, numbers), so this splits.
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    labels.push((k.to_owned(), v.trim_end_matches('"').to_owned()));
                }
                labels.sort();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), Vec::new()),
        };
        out.insert((name, labels), value);
    }
    out
}

/// `GET /metrics` on the app's own metrics listener (200, Prometheus text format).
pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let url = app.metrics_url.as_deref().expect("metrics are on");
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    Scrape {
        samples: parse(&text),
        text,
    }
}

async fn metrics_are_served_on_their_own_listener_by_route_template(db: Db) {
    let app = metrics_app(db).await;
    let owner = app.register("Metrics Ltd", "owner@metrics.example").await;
    let before = scrape(&app).await;
    let contact = uuid::Uuid::now_v7();
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/me", &owner.access_token).await.status,
            StatusCode::OK
        );
    }
    let missing = app
        .get(&format!("/api/v1/contacts/{contact}"), &owner.access_token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let nowhere = app
        .client
        .get(app.url(&format!("/no/such/page/{contact}")))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    // The public port has no /metrics (the console's 404 page answers).
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    assert!(!public
        .text()
        .await
        .unwrap()
        .contains("palisade_http_requests_total"));

    let after = scrape(&app).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let me = [
        ("method", "GET"),
        ("route", "/api/v1/me"),
        ("status", "200"),
    ];
    assert!(
        delta("palisade_http_requests_total", &me) >= 3.0,
        "{}",
        after.text
    );
    assert!(
        delta(
            "palisade_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/contacts/{id}"),
                ("status", "404")
            ]
        ) >= 1.0,
        "{}",
        after.text
    );
    assert!(
        delta(
            "palisade_http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ) >= 2.0,
        "the unknown page and the public /metrics: {}",
        after.text
    );
    assert!(
        !after.text.contains(&contact.to_string()),
        "a raw path leaked into a label"
    );
    // The duration is a histogram with buckets, by method and route.
    assert!(
        delta(
            "palisade_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/api/v1/me")]
        ) >= 3.0
    );
    assert!(
        after.get(
            "palisade_http_request_duration_seconds_bucket",
            &[("method", "GET"), ("route", "/api/v1/me"), ("le", "+Inf")]
        ) >= 3.0,
        "{}",
        after.text
    );
    assert!(after
        .text
        .contains("# TYPE palisade_http_request_duration_seconds histogram"));
    assert!(after.text.contains("# HELP palisade_http_requests_total"));
    // The gauges of this node, and the process collector.
    assert_eq!(after.get("palisade_websocket_connections", &[]), 0.0);
    let pool = after.get("palisade_db_pool_connections", &[("state", "idle")])
        + after.get("palisade_db_pool_connections", &[("state", "active")]);
    assert!(pool >= 1.0, "{}", after.text);
    assert!(
        after.get("process_resident_memory_bytes", &[]) > 0.0,
        "{}",
        after.text
    );
    // Anything but /metrics on the metrics listener is a 404.
    let other = app
        .metrics_url
        .as_deref()
        .unwrap()
        .replace("/metrics", "/api/v1/me");
    assert_eq!(
        app.client.get(other).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn sign_ins_and_lockouts_are_counted_by_result(db: Db) {
    let app = metrics_app(db).await;
    app.register("Locks Ltd", "owner@locks.example").await;
    let before = scrape(&app).await;
    // Each step from its own client address: an address the account signed in from recently
    // may try its password through a lock (see the lockout module), which is not what this
    // test is about.
    let login = |ip: &'static str, email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let owner = "owner@locks.example";
    assert_eq!(
        login("198.51.100.1", owner, GOOD_PASSWORD).await,
        StatusCode::OK
    );
    // Five wrong passwords lock the account (the test threshold is the default, 5); the next
    // attempt is refused as locked.
    for _ in 0..5 {
        assert_eq!(
            login("198.51.100.2", owner, "wrong-password-entirely").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("198.51.100.3", owner, GOOD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A name that is no account fails the same way, and counts the same.
    assert_eq!(
        login(
            "198.51.100.4",
            "nobody@locks.example",
            "wrong-password-entirely"
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let after = scrape(&app).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert!(delta("palisade_auth_logins_total", &[("result", "success")]) >= 1.0);
    assert!(
        delta("palisade_auth_logins_total", &[("result", "failure")]) >= 6.0,
        "{}",
        after.text
    );
    assert!(delta("palisade_auth_logins_total", &[("result", "locked")]) >= 1.0);
    assert!(
        delta("palisade_auth_lockouts_total", &[]) >= 1.0,
        "{}",
        after.text
    );
    assert!(
        delta(
            "palisade_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/auth/login"),
                ("status", "429")
            ]
        ) >= 1.0
    );
}

async fn queue_depth_counts_the_rows_waiting_in_each_queue(db: Db) {
    let app = metrics_app(db).await;
    let queue = |s: &Scrape, q: &str| s.get("palisade_queue_depth", &[("queue", q)]);
    let empty = scrape(&app).await;
    for q in [
        "outbound_sends",
        "webhook_deliveries",
        "media_downloads",
        "mail",
        "inbound_events",
        "alert_webhooks",
    ] {
        assert_eq!(queue(&empty, q), 0.0, "{q}: {}", empty.text);
        assert!(
            empty
                .text
                .contains(&format!("palisade_queue_depth{{queue=\"{q}\"}}")),
            "every queue is reported, empty ones too"
        );
    }
    // The mail worker is off: each registration leaves its verification mail queued.
    let a = app.register("Queue A", "owner@queue-a.example").await;
    app.register("Queue B", "owner@queue-b.example").await;
    let mails = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM mail_outbox WHERE status = 'pending'")
        .await
        .unwrap();
    assert!(mails >= 2);
    assert_eq!(queue(&scrape(&app).await, "mail"), mails as f64);

    // A webhook delivery waits until the (manually driven) worker delivers it.
    let receiver = crate::webhooks::Receiver::start().await;
    crate::webhooks::active_webhook(&app, &a, &receiver.url, json!(["contact.created"])).await;
    for phone in ["+447700900123", "+447700900124"] {
        let r = app
            .post(
                "/api/v1/contacts",
                Some(&a.access_token),
                json!({"phone": phone}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let before = scrape(&app).await;
    assert_eq!(queue(&before, "webhook_deliveries"), 2.0, "{}", before.text);
    assert_eq!(
        palisade_core::webhooks::deliver_due(&app.services)
            .await
            .unwrap(),
        2
    );
    assert_eq!(receiver.count(), 2);
    let after = scrape(&app).await;
    assert_eq!(queue(&after, "webhook_deliveries"), 0.0);
    assert!(
        after.get(
            "palisade_webhook_deliveries_total",
            &[("result", "delivered")]
        ) - before.get(
            "palisade_webhook_deliveries_total",
            &[("result", "delivered")]
        ) >= 2.0
    );
}

/// True for a value that looks like a tenant's, a user's or a client's: a UUID (or a 32-hex
/// simple id), an email address, or an IP address.
fn identifying(v: &str) -> bool {
    let hex = v.chars().filter(char::is_ascii_hexdigit).count();
    let uuidish = uuid::Uuid::parse_str(v).is_ok()
        || (hex >= 32 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        || v.split(['/', '-', '_', '.', '{', '}']).any(|part| {
            uuid::Uuid::parse_str(part).is_ok()
                || (part.len() >= 16 && part.chars().all(|c| c.is_ascii_hexdigit()))
        });
    uuidish || v.contains('@') || v.parse::<std::net::IpAddr>().is_ok()
}

async fn no_label_names_a_tenant_a_user_or_an_address(db: Db) {
    let app = metrics_app(db).await;
    let a = app.register("Ident A", "owner@ident-a.example").await;
    let b = app.register("Ident B", "owner@ident-b.example").await;
    for (s, ip) in [(&a, "203.0.113.7"), (&b, "2001:db8::9")] {
        for path in [
            "/api/v1/me".to_owned(),
            format!("/api/v1/users/{}", s.user_id),
            format!("/api/v1/contacts/{}", s.tenant_id),
            format!("/api/v1/users/{}?email={}", s.user_id, s.email),
            format!("/{}", s.email),
        ] {
            let r = app
                .client
                .get(app.url(&path))
                .bearer_auth(&s.access_token)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{path}: {}", r.status());
        }
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": s.email, "password": "wrong-password-entirely"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let s = scrape(&app).await;
    let mut values = 0;
    for (name, labels) in s.samples.keys() {
        for (k, v) in labels {
            values += 1;
            assert!(!identifying(v), "{name}{{{k}=\"{v}\"}} identifies someone");
        }
    }
    assert!(values > 10, "labels were read: {}", s.text);
    for needle in [
        a.tenant_id.as_str(),
        &b.tenant_id,
        &a.user_id,
        &b.email,
        "203.0.113.7",
        "2001:db8::9",
    ] {
        assert!(!s.text.contains(needle), "{needle} in the metrics");
    }
    // The detector itself recognises what it must refuse.
    for bad in [
        a.tenant_id.as_str(),
        "owner@x.example",
        "203.0.113.7",
        "::1",
        "/api/v1/users/0190f5d2c4a97b3e8d1f2a3b4c5d6e7f",
    ] {
        assert!(identifying(bad), "{bad}");
    }
    for fine in [
        "/api/v1/users/{id}",
        "200",
        "GET",
        "unmatched",
        "mail",
        "0.005",
        "+Inf",
    ] {
        assert!(!identifying(fine), "{fine}");
    }
}

#[tokio::test]
async fn metrics_off_starts_no_listener_and_the_public_port_has_no_metrics() {
    let app = spawn_app(Db::Sqlite).await;
    assert!(app.metrics_url.is_none());
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

// ---- `palisade serve` as an operator runs it ----

/// `palisade serve` on port 0 with `env`; returns the child, the public base URL, the metrics
/// URL (if announced) and a channel of its stderr lines.
pub(crate) fn serve(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (
    Child,
    String,
    Option<String>,
    std::sync::mpsc::Receiver<String>,
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.arg("serve")
        .env_clear()
        .env("PALISADE_LISTEN", "127.0.0.1:0")
        .env("PALISADE_DATA_DIR", dir)
        .env("PALISADE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wants_metrics = env.iter().any(|(k, _)| *k == "PALISADE_METRICS_LISTEN");
    let (mut public, mut metrics) = (None, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while public.is_none() || (wants_metrics && metrics.is_none()) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("palisade serve announced its listeners");
        let url = |marker: &str| {
            line.split(marker).nth(1).map(|rest| {
                format!(
                    "{marker}{}",
                    rest.split(['"', ' ', '\u{1b}']).next().unwrap_or("")
                )
            })
        };
        if line.contains("Palisade is listening on") {
            public = url("http://");
        } else if line.contains("metrics are served on") {
            metrics = url("http://");
        }
    }
    (child, public.unwrap(), metrics, rx)
}

/// Listening TCP sockets held by process `pid` (Linux: /proc).
fn listening_sockets(pid: u32) -> usize {
    let mut listening = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"0A") {
                listening.insert(f[9].to_owned());
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .filter(|inode| listening.contains(inode))
        .count()
}

/// The stderr lines that arrive within `wait`.
pub(crate) fn lines_within(rx: &std::sync::mpsc::Receiver<String>, wait: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        out.push(l);
    }
    out
}

#[tokio::test]
async fn serve_logs_one_json_line_per_request_and_serves_metrics_only_on_its_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, metrics, rx) = serve(
        dir.path(),
        &[
            ("PALISADE_LOG_FORMAT", "json"),
            ("PALISADE_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    );
    let metrics = metrics.expect("the metrics listener is announced");
    assert_eq!(
        listening_sockets(child.id()),
        2,
        "the public and the metrics listener"
    );
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/api/v1/contacts/{}", uuid::Uuid::now_v7()))
        .header("x-request-id", "metrics-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let text = client
        .get(&metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"palisade_http_requests_total{method="GET",route="/api/v1/contacts/{id}",status="401"} 1"#),
        "{text}"
    );
    // A fresh node lists every series of a fixed label set at 0 before anything happened, and
    // the backup gauge at 0 (never) until the platform's audit chain has a backup.
    for series in [
        r#"palisade_auth_logins_total{result="success"} 0"#,
        r#"palisade_auth_logins_total{result="mfa_failure"} 0"#,
        "palisade_auth_lockouts_total 0",
        r#"palisade_security_alerts_total{rule="account_under_attack",severity="critical"} 0"#,
        r#"palisade_webhook_deliveries_total{result="gone"} 0"#,
        r#"palisade_inbound_events_total{result="rate_limited"} 0"#,
        r#"palisade_backup_failures_total{reason="missed"} 0"#,
        "palisade_backup_last_success_timestamp_seconds 0",
        r#"palisade_queue_depth{queue="outbound_sends"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "{series} is not in:\n{text}"
        );
    }
    let lines = lines_within(&rx, Duration::from_millis(500));
    let line: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "metrics-test-1")
        .unwrap_or_else(|| panic!("no line for the request in {lines:#?}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["message"], "request", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/contacts/{id}", "{line}");
    // …and at the top level, where log tools look first.
    assert_eq!(line["request_id"], "metrics-test-1", "{line}");
    assert_eq!(line["route"], "/api/v1/contacts/{id}", "{line}");
    assert_eq!(line["status"], 401, "{line}");
    assert!(line["ms"].is_u64(), "{line}");
    let per_request = lines
        .iter()
        .filter(|l| l.contains("\"metrics-test-1\""))
        .count();
    assert_eq!(per_request, 1, "one line per request: {lines:#?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn serve_without_metrics_listens_once_and_logs_slow_requests_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, metrics, rx) = serve(
        dir.path(),
        &[
            ("PALISADE_LOG_FORMAT", "text"),
            ("PALISADE_SLOW_REQUEST_MS", "0"),
        ],
    );
    assert_eq!(metrics, None);
    assert_eq!(listening_sockets(child.id()), 1, "only the public listener");
    let r = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "metrics-test-2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let lines = lines_within(&rx, Duration::from_millis(500));
    let mine: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("metrics-test-2"))
        .collect();
    assert_eq!(mine.len(), 1, "{lines:#?}");
    let l = mine[0];
    assert!(!l.contains('\u{1b}'), "no colours into a pipe: {l:?}");
    for part in [
        "WARN",
        "request_id=metrics-test-2",
        "route=/healthz",
        "slow request",
        "status=200",
        "ms=",
    ] {
        assert!(l.contains(part), "{part} in {l}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn check_config_names_a_bad_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env_clear()
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_METRICS_LISTEN", "localhost:9464")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PALISADE_METRICS_LISTEN"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("check-config")
        .env_clear()
        .env("PALISADE_DATA_DIR", dir.path())
        .env("PALISADE_METRICS_LISTEN", "127.0.0.1:9464")
        .env("PALISADE_SLOW_REQUEST_MS", "250")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("metrics_listen = \"127.0.0.1:9464\""),
        "{text}"
    );
    assert!(text.contains("slow_request_ms = 250"), "{text}");
    assert!(
        text.contains("# metrics: GET http://127.0.0.1:9464/metrics"),
        "{text}"
    );
}
