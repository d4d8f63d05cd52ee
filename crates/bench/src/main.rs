//! `palisade-bench`: load generators for the figures the README documents.
//!
//! Each subcommand drives a running `palisade serve` (and `palisade sim`) over HTTP the way Meta
//! and clients would, and prints one summary. `bench/messaging-load.sh` starts the servers and
//! runs them; see the README ("Performance") for the figures and how to reproduce them.

// `serde_json::Value[..]` yields Null on a missing key or index and never panics; this
// load generator reads JSON answers that way.
#![allow(clippy::indexing_slicing)]

use anyhow::{bail, Context};
use clap::Parser;

mod campaign;
mod conversations_list;
mod ingest;
mod mail;
mod password_writes;
mod ws;

#[derive(Debug, Parser)]
#[command(
    name = "palisade-bench",
    about = "Load generators for Palisade's figures"
)]
enum Command {
    /// Signed inbound webhooks of N messages each, sustained; counts what was processed.
    Ingest(ingest::Args),
    /// Customer messages injected into the simulator at a fixed rate; time until each one's
    /// `message.created` arrives on a websocket.
    WsLatency(ws::LatencyArgs),
    /// N authenticated idle websockets; the server's resident memory they cost.
    WsIdle(ws::IdleArgs),
    /// Another tenant's contact writes while concurrent wrong-password changes hash.
    PasswordWrites(password_writes::Args),
    /// The mail worker draining a backlog into a local SMTP server (in this process).
    MailOutbox(mail::Args),
    /// `GET /api/v1/conversations` latency at 100,000 conversations: each filter's first and
    /// deep page.
    ConversationsList(conversations_list::Args),
    /// A campaign to 10,000 contacts at the configured pace while an agent replies every
    /// 200 ms: the achieved pace and the replies' latency, as the simulator saw them.
    Campaign(campaign::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Ingest(args) => ingest::run(args).await,
        Command::WsLatency(args) => ws::latency(args).await,
        Command::WsIdle(args) => ws::idle(args).await,
        Command::PasswordWrites(args) => password_writes::run(args).await,
        Command::MailOutbox(args) => mail::run(args).await,
        Command::ConversationsList(args) => conversations_list::run(args).await,
        Command::Campaign(args) => campaign::run(args).await,
    }
}

/// A tenant owner's access token, from a fresh registration.
pub(crate) struct Owner {
    pub token: String,
}

pub(crate) async fn register(client: &reqwest::Client, server: &str) -> anyhow::Result<Owner> {
    let email = format!("bench-{}@bench.example", uuid::Uuid::new_v4().simple());
    let r = client
        .post(format!("{server}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "tenant_name": "Bench Co",
            "name": "Bench Owner",
            "email": email,
            "password": "correct-orbit-lantern-quietly",
        }))
        .send()
        .await
        .context("register")?;
    if !r.status().is_success() {
        bail!("register answered {}: {}", r.status(), r.text().await?);
    }
    let body: serde_json::Value = r.json().await?;
    Ok(Owner {
        token: body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned(),
    })
}

/// A simulated number, connected to the owner's tenant. Returns (connection id, phone number
/// id, display number, app secret, and the verify token of the webhook handshake).
pub(crate) struct Connected {
    pub connection_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub app_secret: String,
    pub verify_token: String,
}

pub(crate) async fn connect_number(
    client: &reqwest::Client,
    server: &str,
    sim: &str,
    owner: &Owner,
) -> anyhow::Result<Connected> {
    let n: serde_json::Value = client
        .post(format!("{sim}/_sim/phone-numbers"))
        .json(&serde_json::json!({"verified_name": "Bench Support"}))
        .send()
        .await
        .context("simulator: create number")?
        .json()
        .await?;
    let r = client
        .post(format!("{server}/api/v1/whatsapp/connections"))
        .bearer_auth(&owner.token)
        .json(&serde_json::json!({
            "display_name": "Bench line",
            "phone_number_id": n["phone_number_id"],
            "waba_id": n["waba_id"],
            "access_token": n["access_token"],
            "app_secret": n["app_secret"],
        }))
        .send()
        .await
        .context("create connection")?;
    if !r.status().is_success() {
        bail!("connection answered {}: {}", r.status(), r.text().await?);
    }
    let c: serde_json::Value = r.json().await?;
    let text = |v: &serde_json::Value, what: &str| -> anyhow::Result<String> {
        Ok(v.as_str().with_context(|| format!("no {what}"))?.to_owned())
    };
    Ok(Connected {
        connection_id: text(&c["connection"]["id"], "connection id")?,
        phone_number_id: text(&n["phone_number_id"], "phone_number_id")?,
        display_phone_number: text(&n["display_phone_number"], "display_phone_number")?,
        app_secret: text(&n["app_secret"], "app_secret")?,
        verify_token: text(&c["verify_token"], "verify_token")?,
    })
}

/// The value at `q` (0–1) of sorted samples.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted
        .get(i.min(sorted.len() - 1))
        .copied()
        .unwrap_or(f64::NAN)
}
