//! Webhook fan-out (integrations issue: 1,000 events to 10 endpoints delivered and logged in
//! ≤ 10 s against a local receiver).
//!
//!     cargo run --release -p palisade --example webhook_fanout [-- postgres://…]
//!
//! Starts the real server (SQLite in a throw-away directory, or a fresh database it creates on
//! the given PostgreSQL server and drops afterwards) with its delivery worker, a local HTTP
//! receiver, one tenant with 10 active endpoints subscribed to `user.updated`, and then queues
//! 1,000 events in one transaction (10,000 deliveries). It reports the time from the start of
//! that transaction until every delivery is `delivered` with its attempt logged (both are
//! written in one transaction) and the receiver has counted 10,000 requests.
//!
//! The per-endpoint limit (`PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE`, default 60) is raised
//! here: at 60 a minute, 1,000 events to one endpoint take 16⅔ minutes by design.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../../store/examples/support/scratch_db.rs"]
mod scratch_db;

use scratch_db::ScratchDb;

use palisade::app::Application;
use palisade::config::RawConfig;
use palisade::Config;
use palisade_store::{Query, SystemScope};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: usize = 1000;
const ENDPOINTS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pg = std::env::args().nth(1);
    let dir = tempfile::tempdir()?;
    let db = ScratchDb::create(pg.as_deref(), dir.path()).await?;
    let url = db.url.clone();

    // The receiver: counts requests, answers 200 at once.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let receiver = axum::Router::new().route(
        "/hook/{n}",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let raw = RawConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(url.clone()),
        signing_keys: Some(palisade_core::crypto::generate_ring_text().into()),
        encryption_keys: Some(palisade_core::crypto::generate_ring_text().into()),
        webhooks_allow_private_targets: true,
        webhooks_deliveries_per_minute: 1_000_000,
        webhooks_worker_interval_ms: 100,
        rate_limit_api_per_minute: 0,
        rate_limit_register_per_hour: 0,
        ..RawConfig::default()
    };
    let config = Config::from_raw(raw)?;
    let app = Application::build(&config).await?;
    let base = format!("http://{}", app.local_addr()?);
    let services = app.services().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"tenant_name": "Bench", "name": "Bench Owner",
            "email": "owner@bench.example", "password": "correct-orbit-lantern-quietly"}))
        .send()
        .await?
        .json()
        .await?;
    let token = reg["access_token"].as_str().expect("registered").to_owned();
    let tenant: uuid::Uuid = reg["tenant"]["id"].as_str().expect("tenant").parse()?;
    let owner = reg["user"]["id"].clone();
    http.put(format!("{base}/api/v1/webhooks/allowed-domains"))
        .bearer_auth(&token)
        .json(&json!({"allowed_domains": ["127.0.0.1"]}))
        .send()
        .await?
        .error_for_status()?;
    for n in 0..ENDPOINTS {
        let r: Value = http
            .post(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": format!("http://{receiver_addr}/hook/{n}"),
                "events": ["user.updated"]}))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(r["webhook"]["status"], "active", "{r}");
    }

    // 1,000 events, each fanned out to the 10 endpoints, queued as a use case would.
    let started = Instant::now();
    let mut tx = services.store.begin(SystemScope::new("bench")).await?;
    for i in 0..EVENTS {
        let data = json!({"id": owner, "name": format!("Bench Owner {i}"), "role": "admin"});
        palisade_core::webhooks::enqueue(
            &mut tx,
            tenant.into(),
            palisade_domain::EventType::UserUpdated,
            vec![data],
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    }
    tx.commit().await?;
    let queued_in = started.elapsed();

    let total = i64::try_from(EVENTS * ENDPOINTS)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (delivered, logged) = loop {
        let mut tx = services.store.begin_read(SystemScope::new("bench")).await?;
        #[derive(sqlx::FromRow)]
        struct N {
            n: i64,
        }
        let d: N = tx
            .fetch_one(Query::new(
                "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'delivered'",
            ))
            .await?;
        let a: N = tx
            .fetch_one(Query::new("SELECT COUNT(*) AS n FROM webhook_attempts"))
            .await?;
        drop(tx);
        if (d.n >= total && a.n >= total) || Instant::now() > deadline {
            break (d.n, a.n);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    println!(
        "database: {}",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!(
        "{EVENTS} events x {ENDPOINTS} endpoints: queued in {:.2} s; {delivered} delivered, \
         {logged} attempts logged, {} requests received, in {:.2} s ({:.0} deliveries/s)",
        queued_in.as_secs_f64(),
        received.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );

    let _ = stop.send(());
    let _ = server.await;
    db.drop().await?;
    anyhow::ensure!(
        delivered == total && logged == total,
        "not everything was delivered"
    );
    Ok(())
}
