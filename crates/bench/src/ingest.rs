//! Inbound ingestion: Meta-shaped, signed webhook POSTs of `--batch` text messages each, from
//! `--concurrency` senders for `--duration` seconds, against `POST /webhooks/whatsapp/{id}`.
//!
//! A message counts when it is processed: stored with its contact and conversation (counted in
//! the database, read-only), and the run ends by checking a sample through the REST API. The
//! figure is processed messages divided by the time from the first POST until the last message
//! was processed, so a backlog left at the end of the sending window lowers it.

use crate::{connect_number, quantile, register};
use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18282")]
    server: String,
    /// The simulator the server's Graph base URL points at (to create the number).
    #[arg(long, default_value = "http://127.0.0.1:18290")]
    sim: String,
    /// The server's database, read to count processed messages: `sqlite://…` or `postgres://…`.
    #[arg(long)]
    database_url: String,
    /// Seconds of sending.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Messages per webhook POST.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Concurrent POSTs in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Distinct customers the messages come from (contacts and conversations created, then reused).
    #[arg(long, default_value_t = 20_000)]
    senders: u64,
    /// Authenticated websockets of the tenant open during the run (an agent's inbox): each
    /// processed message's `message.created` event is then read and published to them. With
    /// none, a node skips loading the events of a tenant nobody watches.
    #[arg(long, default_value_t = 1)]
    watchers: usize,
    /// Seconds to wait, after sending stops, for the backlog to be processed.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
}

enum Counter {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Counter {
    async fn open(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            Ok(Counter::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts.read_only(true))
                    .await?,
            ))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Counter::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await?,
            ))
        } else {
            bail!("--database-url must be sqlite:// or postgres://")
        }
    }

    /// Inbound messages stored. Each has its conversation and contact: the schema's foreign
    /// keys (message → conversation → contact) guarantee it, so the count needs no join (a
    /// join over hundreds of thousands of rows, polled, took CPU from the server it measures).
    async fn processed(&self) -> anyhow::Result<u64> {
        const SQL: &str = "SELECT COUNT(*) FROM messages WHERE direction = 'inbound'";
        let n: i64 = match self {
            Counter::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await?,
            Counter::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.batch == 0 || args.concurrency == 0 || args.senders == 0 {
        bail!("--batch, --concurrency and --senders must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let owner = register(&client, &args.server).await?;
    let number = connect_number(&client, &args.server, &args.sim, &owner).await?;
    let mut watchers = Vec::with_capacity(args.watchers);
    let watched = Arc::new(Watched::default());
    let ws = crate::ws::ws_url(&args.server)?;
    for _ in 0..args.watchers {
        let socket = crate::ws::open(&ws, &owner.token, true).await?;
        watchers.push(tokio::spawn(watch(socket, watched.clone())));
    }
    let counter = Counter::open(&args.database_url).await?;
    let before = counter.processed().await?;
    let url = format!("{}/webhooks/whatsapp/{}", args.server, number.connection_id);
    let number = Arc::new(number);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (client, url, number, stop, sent, refused) = (
            client.clone(),
            url.clone(),
            number.clone(),
            stop.clone(),
            sent.clone(),
            refused.clone(),
        );
        let (batch, senders) = (args.batch, args.senders);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut seq: u64 = worker as u64;
            while !stop.load(Ordering::Relaxed) {
                let body = payload(&number, batch, senders, &mut seq);
                let signature = sign(&number.app_secret, &body);
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status().is_success());
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                if ok {
                    sent.fetch_add(batch as u64, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let window = Duration::from_secs(args.duration);
    let mut last_print = Instant::now();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let done = counter.processed().await? - before;
            eprintln!(
                "  {:>4.0} s: acknowledged {} messages, processed {}",
                started.elapsed().as_secs_f64(),
                sent.load(Ordering::Relaxed),
                done
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    let sending = started.elapsed();
    let acknowledged = sent.load(Ordering::Relaxed);
    // Drain: wait until every acknowledged message is processed.
    let deadline = Instant::now() + Duration::from_secs(args.drain_timeout);
    let mut processed = counter.processed().await? - before;
    while processed < acknowledged && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        processed = counter.processed().await? - before;
    }
    let total = started.elapsed();
    check_visible(&client, &args.server, &owner.token).await?;
    latencies.sort_by(f64::total_cmp);
    println!(
        "ingest: {} messages per POST, {} concurrent POSTs, {} senders",
        args.batch, args.concurrency, args.senders
    );
    println!(
        "  acknowledged: {acknowledged} messages in {:.1} s = {:.0} messages/s ({} POSTs refused); ack p50 {:.1} ms, p99 {:.1} ms",
        sending.as_secs_f64(),
        acknowledged as f64 / sending.as_secs_f64(),
        refused.load(Ordering::Relaxed),
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.99),
    );
    println!(
        "  processed:    {processed} messages in {:.1} s = {:.0} messages/s (backlog after sending stopped: {:.1} s)",
        total.as_secs_f64(),
        processed as f64 / total.as_secs_f64(),
        (total - sending).as_secs_f64(),
    );
    // Events published at the end of the drain may still be on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for w in watchers {
        w.abort();
        if let Ok(heard) = w.await {
            heard?;
        }
    }
    if args.watchers > 0 {
        println!(
            "  watchers:     {} websockets; message.created received {}, missed (lagged) {}",
            args.watchers,
            watched.created.load(Ordering::Relaxed),
            watched.missed.load(Ordering::Relaxed),
        );
    }
    if processed < acknowledged {
        bail!(
            "{} acknowledged messages were not processed within the drain timeout",
            acknowledged - processed
        );
    }
    Ok(())
}

/// What the watchers read: `message.created` events, and events the server reported missed
/// (`lagged`: the socket fell behind).
#[derive(Default)]
struct Watched {
    created: AtomicU64,
    missed: AtomicU64,
}

/// Reads a watcher's socket until the run ends (the task is aborted then); fails if the server
/// closes it or sends an error.
async fn watch(mut socket: crate::ws::Socket, seen: Arc<Watched>) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    while let Some(frame) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame.context("watcher socket")? {
            // Only the type is read (the bench shares the machine with the server).
            #[derive(serde::Deserialize)]
            struct Frame<'a> {
                #[serde(rename = "type")]
                kind: &'a str,
                #[serde(default)]
                data: Option<Missed>,
            }
            #[derive(serde::Deserialize)]
            struct Missed {
                missed: Option<u64>,
            }
            let frame: Frame = serde_json::from_str(t.as_str()).context("a watcher's frame")?;
            match frame.kind {
                "message.created" => {
                    seen.created.fetch_add(1, Ordering::Relaxed);
                }
                "lagged" => {
                    let n = frame.data.and_then(|d| d.missed).unwrap_or(1);
                    seen.missed.fetch_add(n, Ordering::Relaxed);
                }
                "error" => bail!("the server sent a watcher an error: {}", t.as_str()),
                _ => {}
            }
        }
    }
    bail!("the server closed a watcher's socket")
}

/// One Meta envelope with `batch` text messages from pseudo-random customers.
fn payload(n: &crate::Connected, batch: usize, senders: u64, seq: &mut u64) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let mut contacts = Vec::with_capacity(batch);
    let mut messages = Vec::with_capacity(batch);
    for _ in 0..batch {
        *seq = seq.wrapping_add(7919);
        let customer = 15_550_000_000u64 + (*seq % senders);
        let wa_id = customer.to_string();
        contacts.push(
            json!({"profile": {"name": format!("Customer {}", *seq % senders)}, "wa_id": wa_id}),
        );
        messages.push(json!({
            "from": wa_id,
            "id": format!("wamid.bench{}", uuid::Uuid::new_v4().simple()),
            "timestamp": now,
            "type": "text",
            "text": {"body": "Hello, I would like to know the status of my order."},
        }));
    }
    let envelope: Value = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "bench-waba",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": n.display_phone_number,
                        "phone_number_id": n.phone_number_id,
                    },
                    "contacts": contacts,
                    "messages": messages,
                },
            }],
        }],
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The processed messages are visible through the REST API: a conversation with messages and
/// its contact.
async fn check_visible(client: &reqwest::Client, server: &str, token: &str) -> anyhow::Result<()> {
    let get = |path: String| {
        let client = client.clone();
        let token = token.to_owned();
        async move {
            let r = client.get(path).bearer_auth(token).send().await?;
            if !r.status().is_success() {
                bail!("GET answered {}", r.status());
            }
            Ok::<Value, anyhow::Error>(r.json().await?)
        }
    };
    let list = get(format!("{server}/api/v1/conversations")).await?;
    let conv = list["data"]
        .get(0)
        .context("no conversation visible through the API")?;
    let id = conv["id"].as_str().context("conversation id")?;
    let msgs = get(format!("{server}/api/v1/conversations/{id}/messages")).await?;
    if msgs["data"].as_array().is_none_or(Vec::is_empty) {
        bail!("conversation {id} shows no messages through the API");
    }
    let contact = conv["contact_id"].as_str().context("contact id")?;
    get(format!("{server}/api/v1/contacts/{contact}")).await?;
    Ok(())
}
