//! How much an audit record adds to a mutation (integrations issue: p99 grows by ≤ 1 ms).
//!
//!     cargo run --release -p palisade-store --example audit_overhead [-- postgres://…]
//!
//! Runs the same user update 2,000 times in its own transaction, alternately without and with
//! the hash-chained audit record that services write beside it, on a fresh SQLite database (or
//! the given PostgreSQL server, in a database it creates and drops), and prints p50/p99 of each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/scratch_db.rs"]
mod scratch_db;

use scratch_db::ScratchDb;

use palisade_domain::{Role, TenantId, UserId};
use palisade_store::audit::{self, AuditEntry};
use palisade_store::{users, DatabaseSettings, Query, Store, SystemScope};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const N: usize = 2000;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pg = std::env::args().nth(1);
    let dir = std::env::temp_dir().join(format!("palisade-audit-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let db = ScratchDb::create(pg.as_deref(), &dir).await?;
    let url = db.url.clone();
    let settings = DatabaseSettings {
        url: url.clone(),
        migration_url: None,
        max_connections: 4,
    };
    Store::migrate(&settings).await?;
    let store = Store::connect(&settings).await?;
    let now = OffsetDateTime::now_utc();
    let tenant = TenantId::new();
    let mut tx = store.begin(SystemScope::new("bench")).await?;
    tx.execute(
        Query::new(
            "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, 'Bench', $2, $2)",
        )
        .bind(tenant)
        .bind(now),
    )
    .await?;
    let mut user = users::User::new_super_admin("bench@bench.example", "Bench", "x".into(), now);
    user.id = UserId::new();
    user.tenant_id = Some(tenant);
    user.role = Role::Agent;
    users::insert(&mut tx, &user).await?;
    tx.commit().await?;

    let (mut plain, mut audited) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 0..N {
        user.name = format!("Bench {i}");
        let start = Instant::now();
        let mut tx = store.begin(SystemScope::new("bench")).await?;
        users::update(&mut tx, &user).await?;
        tx.commit().await?;
        plain.push(start.elapsed());

        let start = Instant::now();
        let mut tx = store.begin(SystemScope::new("bench")).await?;
        users::update(&mut tx, &user).await?;
        let entry = AuditEntry {
            tenant_id: Some(tenant),
            actor_id: Some(user.id),
            actor_email: Some(user.email.clone()),
            action: "user.updated".into(),
            target_type: Some("user".into()),
            target_id: Some(user.id.to_string()),
            metadata: serde_json::json!({ "i": i }),
            before: Some(serde_json::json!({ "name": format!("Bench {}", i.saturating_sub(1)) })),
            after: Some(serde_json::json!({ "name": user.name })),
            ..AuditEntry::default()
        };
        audit::append(&mut tx, &entry, OffsetDateTime::now_utc()).await?;
        tx.commit().await?;
        audited.push(start.elapsed());
    }
    let (p50a, p99a) = (pct(&mut plain, 0.5), pct(&mut plain, 0.99));
    let (p50b, p99b) = (pct(&mut audited, 0.5), pct(&mut audited, 0.99));
    println!(
        "{} mutations each on {}",
        N,
        if pg.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!("  without audit   p50 {p50a:.3} ms  p99 {p99a:.3} ms");
    println!("  with audit      p50 {p50b:.3} ms  p99 {p99b:.3} ms");
    println!("  p99 grows by    {:.3} ms (target <= 1 ms)", p99b - p99a);
    store.close().await;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
