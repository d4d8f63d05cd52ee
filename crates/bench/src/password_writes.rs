//! `password-writes`: does hashing a password hold up other tenants' writes?
//!
//! Tenant A's owner sends `--changers` concurrent `POST /api/v1/auth/password` with a wrong
//! current password, over and over (each costs an argon2 verification); meanwhile tenant B's
//! owner creates contacts one after another (`POST /api/v1/contacts`, a write with its audit
//! record). The figure is B's latency: first alone (`--baseline` seconds), then under the
//! changes. Before the changes hashed outside their transaction, each held SQLite's single
//! writer for a hash, so B's writes queued behind them.
//!
//! The server must run with the API rate limit off (`PALISADE_RATE_LIMIT_API_PER_MINUTE=0`):
//! every request comes from one address and one user.

use crate::{quantile, register};
use anyhow::{bail, Context};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18282")]
    server: String,
    /// Wrong-password changes in flight at once (tenant A).
    #[arg(long, default_value_t = 20)]
    changers: usize,
    /// Seconds of contact writes alone, before the changes start.
    #[arg(long, default_value_t = 5)]
    baseline: u64,
    /// Seconds of contact writes while the changes run.
    #[arg(long, default_value_t = 20)]
    duration: u64,
}

/// Creates contacts one at a time for `secs` seconds; returns each one's latency in ms.
async fn write_contacts(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    next: &AtomicU64,
    secs: u64,
) -> anyhow::Result<Vec<f64>> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut latencies = Vec::new();
    while Instant::now() < end {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let r = client
            .post(format!("{server}/api/v1/contacts"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "phone": format!("+1555{:07}", n % 10_000_000) }))
            .send()
            .await
            .context("create contact")?;
        let status = r.status();
        if status != reqwest::StatusCode::CREATED {
            bail!("contact create answered {status}: {}", r.text().await?);
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: {} writes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let server = args.server.trim_end_matches('/').to_owned();
    let changer = register(&client, &server).await?;
    let writer = register(&client, &server).await?;
    let next = AtomicU64::new(0);

    let alone = write_contacts(&client, &server, &writer.token, &next, args.baseline).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.changers {
        let (client, server, token) = (client.clone(), server.clone(), changer.token.clone());
        let (stop, changes) = (stop.clone(), changes.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{server}/api/v1/auth/password"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "current_password": "not-the-current-password",
                        "new_password": "another-orbit-lantern-quietly",
                    }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY => {
                        changes.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        eprintln!("password change answered {}", r.status());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        eprintln!("password change failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    // Let every changer get its first request in before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let loaded = write_contacts(&client, &server, &writer.token, &next, args.duration).await;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let loaded = loaded?;
    let done = changes.load(Ordering::Relaxed);
    summary("another tenant's POST /api/v1/contacts, alone", alone);
    summary(
        &format!(
            "same, during {} concurrent wrong-password changes ({done} answered, {:.0}/s)",
            args.changers,
            done as f64 / elapsed.max(f64::EPSILON)
        ),
        loaded,
    );
    Ok(())
}
