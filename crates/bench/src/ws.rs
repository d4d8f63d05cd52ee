//! The realtime websocket's figures.
//!
//! `ws-latency`: customer messages injected into the simulator (`POST /_sim/inbound`) at a fixed
//! rate, each with a unique marker in its text; the simulator delivers them to the server's
//! signed webhook endpoint, the server stores and processes them and publishes
//! `message.created` on the tenant's sockets. Each message's latency is the time from just
//! before its inject POST until its frame arrives on one websocket (first-message auth). The
//! simulator's webhook batching and duplicate injection are turned off by default
//! (`--keep-sim-faults` leaves them as configured): a batch waits up to its window (200 ms by
//! default) inside the simulator before it is sent, and at 500 messages/s a 10% batch rate
//! keeps a batch open nearly all the time, so the figure would measure the simulator's timer.
//!
//! `ws-idle`: N authenticated websockets (first-message auth, one access token: the server has
//! no per-session socket limit) held open; the figure is the server's resident memory after
//! minus before, read from `/proc/<pid>/status` when `--server-pid` is given (same machine).

use crate::{connect_number, quantile, register};
use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18282")]
    server: String,
    /// The simulator the server's Graph base URL points at.
    #[arg(long, default_value = "http://127.0.0.1:18290")]
    sim: String,
    /// Customer messages injected per second (evenly paced).
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Seconds of injecting.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Distinct customers the messages come from.
    #[arg(long, default_value_t = 300)]
    senders: u64,
    /// Inject POSTs in flight at most (the pace comes from a ticker; a slow POST does not stall it).
    #[arg(long, default_value_t = 32)]
    injectors: usize,
    /// Seconds to wait, after the last injection, for frames still on their way.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Leave the simulator's webhook batching and duplicate rates as they are (default: both off).
    #[arg(long)]
    keep_sim_faults: bool,
}

#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18282")]
    server: String,
    /// Websockets to open.
    #[arg(long, default_value_t = 5_000)]
    connections: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to hold the sockets, all ready, before measuring.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// The server's process id: its resident memory is read from /proc/<pid>/status before and
    /// after (without it the caller measures).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// `ws://host:port/api/v1/ws` for an `http://host:port` server.
pub(crate) fn ws_url(server: &str) -> anyhow::Result<String> {
    let rest = server
        .strip_prefix("http://")
        .context("--server must be an http:// URL")?;
    Ok(format!("ws://{}/api/v1/ws", rest.trim_end_matches('/')))
}

/// Opens a socket and authenticates with a first message; returns once `ready` arrived.
/// Small client buffers: thousands of these share the machine with the server.
pub(crate) async fn open(url: &str, token: &str, nodelay: bool) -> anyhow::Result<Socket> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), nodelay)
        .await
        .context("websocket handshake")?;
    let auth = json!({"type": "auth", "token": token}).to_string();
    ws.send(Message::Text(auth.into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Err(_) => bail!("no ready within 30 s"),
            Ok(None) => bail!("socket ended before ready"),
            Ok(Some(Err(e))) => return Err(e).context("before ready"),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                if v["type"] == "ready" {
                    return Ok(ws);
                }
                bail!("expected ready, got {}", t.as_str());
            }
            Ok(Some(Ok(Message::Close(f)))) => bail!("closed before ready: {f:?}"),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// What the socket reader saw.
struct Heard {
    arrived: Vec<Option<Instant>>,
    duplicates: u64,
    lagged: u64,
    ended: Option<String>,
}

pub async fn latency(args: LatencyArgs) -> anyhow::Result<()> {
    if args.rate == 0 || args.duration == 0 || args.senders == 0 || args.injectors == 0 {
        bail!("--rate, --duration, --senders and --injectors must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.injectors)
        .build()?;
    let sim = args.sim.trim_end_matches('/').to_owned();
    let server = args.server.trim_end_matches('/').to_owned();
    let owner = register(&client, &server).await?;
    let number = connect_number(&client, &server, &sim, &owner).await?;
    if !args.keep_sim_faults {
        let r = client
            .post(format!("{sim}/_sim/config"))
            .json(&json!({"batch_rate": 0.0, "duplicate_rate": 0.0}))
            .send()
            .await
            .context("simulator: config")?;
        if !r.status().is_success() {
            bail!(
                "simulator config answered {}: {}",
                r.status(),
                r.text().await?
            );
        }
    }
    let cfg: Value = client
        .get(format!("{sim}/_sim/config"))
        .send()
        .await?
        .json()
        .await?;
    let r = client
        .post(format!(
            "{sim}/_sim/phone-numbers/{}/subscribe",
            number.phone_number_id
        ))
        .json(&json!({
            "callback_url": format!("{server}/webhooks/whatsapp/{}", number.connection_id),
            "verify_token": number.verify_token,
        }))
        .send()
        .await
        .context("simulator: subscribe")?;
    if !r.status().is_success() {
        bail!("subscribe answered {}: {}", r.status(), r.text().await?);
    }
    let mut ws = open(&ws_url(&server)?, &owner.token, true).await?;

    let total = usize::try_from(u64::from(args.rate) * args.duration)?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = Arc::new(format!("bench {} #", run.get(..8).unwrap_or(&run)));
    let received = Arc::new(AtomicUsize::new(0));

    // The reader timestamps each frame as it arrives, before parsing it.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = {
        let (prefix, received) = (prefix.clone(), received.clone());
        tokio::spawn(async move {
            let mut heard = Heard {
                arrived: vec![None; total],
                duplicates: 0,
                lagged: 0,
                ended: None,
            };
            loop {
                let m = tokio::select! {
                    _ = &mut stop_rx => break,
                    m = ws.next() => m,
                };
                let now = Instant::now();
                let text = match m {
                    None => {
                        heard.ended = Some("the server ended the socket".into());
                        break;
                    }
                    Some(Err(e)) => {
                        heard.ended = Some(e.to_string());
                        break;
                    }
                    Some(Ok(Message::Close(f))) => {
                        heard.ended = Some(format!("closed: {f:?}"));
                        break;
                    }
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                };
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("message.created") => {}
                    Some("lagged") => {
                        heard.lagged += v["data"]["missed"].as_u64().unwrap_or(1);
                        continue;
                    }
                    _ => continue,
                }
                let seq = v["data"]["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix(prefix.as_str()))
                    .and_then(|n| n.parse::<usize>().ok());
                if let Some(slot) = seq.and_then(|i| heard.arrived.get_mut(i)) {
                    if slot.is_some() {
                        heard.duplicates += 1;
                    } else {
                        *slot = Some(now);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            heard
        })
    };

    // Even pace: a ticker releases one message per period to a bounded set of injectors.
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let post_ms: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let refused = Arc::new(AtomicU64::new(0));
    let first_refusal: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let injectors = Arc::new(tokio::sync::Semaphore::new(args.injectors));
    let url = Arc::new(format!("{sim}/_sim/inbound"));
    let phone = Arc::new(number.phone_number_id.clone());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut stalled: u64 = 0;
    let started = Instant::now();
    for seq in 0..total {
        tick.tick().await;
        let permit = match injectors.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                stalled += 1;
                injectors.clone().acquire_owned().await?
            }
        };
        let customer = seq as u64 % args.senders;
        let body = json!({
            "phone_number_id": phone.as_str(),
            "from": format!("4477009{customer:05}"),
            "profile_name": format!("Bench Customer {customer}"),
            "type": "text",
            "text": {"body": format!("{prefix}{seq}")},
        });
        let request = client.post(url.as_str()).json(&body);
        let (sent_at, post_ms, refused, first_refusal) = (
            sent_at.clone(),
            post_ms.clone(),
            refused.clone(),
            first_refusal.clone(),
        );
        tokio::spawn(async move {
            let t = Instant::now();
            if let Some(slot) = lock(&sent_at).get_mut(seq) {
                *slot = Some(t);
            }
            let r = request.send().await;
            lock(&post_ms).push(t.elapsed().as_secs_f64() * 1000.0);
            let refusal = match r {
                Ok(r) if r.status().as_u16() == 201 => None,
                Ok(r) => Some(format!(
                    "{}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = refusal {
                refused.fetch_add(1, Ordering::Relaxed);
                if let Some(slot) = lock(&sent_at).get_mut(seq) {
                    *slot = None;
                }
                lock(&first_refusal).get_or_insert(why);
            }
            drop(permit);
        });
    }
    let _all = injectors
        .acquire_many(u32::try_from(args.injectors)?)
        .await?;
    let injecting = started.elapsed();
    let injected = total - usize::try_from(refused.load(Ordering::Relaxed))?;
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    while received.load(Ordering::Relaxed) < injected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    let heard = reader.await?;

    let sent_at = std::mem::take(&mut *lock(&sent_at));
    let mut latencies: Vec<f64> = sent_at
        .iter()
        .zip(&heard.arrived)
        .filter_map(|(s, a)| Some(a.as_ref()?.saturating_duration_since(*s.as_ref()?)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut posts = std::mem::take(&mut *lock(&post_ms));
    posts.sort_by(f64::total_cmp);
    let lost = injected.saturating_sub(latencies.len());
    let acks = webhook_acks(&client, &sim, &number.phone_number_id).await;

    println!(
        "ws-latency: {} messages/s for {} s from {} senders, {} injectors; simulator batch_rate {}, duplicate_rate {}{}",
        args.rate,
        args.duration,
        args.senders,
        args.injectors,
        cfg["batch_rate"],
        cfg["duplicate_rate"],
        if args.keep_sim_faults { " (as configured)" } else { " (turned off by the bench)" },
    );
    println!(
        "  injected:  {injected} of {total} in {:.1} s = {:.0} messages/s ({} refused); ticker waited for a free injector {stalled} times; inject POST p50 {:.1} ms, p99 {:.1} ms",
        injecting.as_secs_f64(),
        total as f64 / injecting.as_secs_f64(),
        refused.load(Ordering::Relaxed),
        quantile(&posts, 0.50),
        quantile(&posts, 0.99),
    );
    if let Some(why) = lock(&first_refusal).as_ref() {
        println!("    first refusal: {why}");
    }
    println!(
        "  received:  {} message.created frames; lost {lost}, duplicates {}, missed per lagged frames {}{}",
        latencies.len(),
        heard.duplicates,
        heard.lagged,
        heard.ended.as_ref().map(|e| format!("; socket ended: {e}")).unwrap_or_default(),
    );
    println!(
        "  inject -> websocket: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 200 ms)",
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.95),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    match acks {
        Ok((mut ms, not_ok)) => {
            ms.sort_by(f64::total_cmp);
            println!(
                "  webhook POST simulator -> server (durable write, then 200): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over the last {} deliveries ({not_ok} not 200)",
                quantile(&ms, 0.50),
                quantile(&ms, 0.99),
                ms.last().copied().unwrap_or(f64::NAN),
                ms.len(),
            );
        }
        Err(e) => println!("  webhook POST latencies unavailable: {e:#}"),
    }
    if lost > 0 {
        bail!("{lost} injected messages never reached the websocket");
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The simulator's log of webhook attempts for the number (it keeps the most recent ones):
/// latencies in ms of those answered 200, and how many were not.
async fn webhook_acks(
    client: &reqwest::Client,
    sim: &str,
    phone_number_id: &str,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let log: Value = client
        .get(format!("{sim}/_sim/deliveries"))
        .query(&[("phone_number_id", phone_number_id)])
        .send()
        .await?
        .json()
        .await?;
    let items = log.as_array().context("deliveries is not a list")?;
    let ok: Vec<f64> = items
        .iter()
        .filter(|d| d["status"] == 200)
        .filter_map(|d| d["latency_ms"].as_f64())
        .collect();
    let not_ok = items.len() - ok.len();
    Ok((ok, not_ok))
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/<pid>/status).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// CPU time (user + system) of a process in clock ticks (fields 14 and 15 of /proc/<pid>/stat).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub async fn idle(args: IdleArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.concurrency == 0 {
        bail!("--connections and --concurrency must be positive");
    }
    let client = reqwest::Client::new();
    let server = args.server.trim_end_matches('/').to_owned();
    let owner = register(&client, &server).await?;
    let url = ws_url(&server)?;
    // One socket first, so that the tenant's broadcast channel and the auth cache exist before
    // the baseline: the figure is what the further sockets cost.
    let first = open(&url, &owner.token, false).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = args.server_pid.map(rss_kib).transpose()?;

    let started = Instant::now();
    let results: Vec<anyhow::Result<Socket>> = futures_util::stream::iter(1..args.connections)
        .map(|_| open(&url, &owner.token, false))
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let opening = started.elapsed();
    let mut sockets = vec![first];
    let mut failed = 0usize;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => sockets.push(s),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let ready = sockets.len();
    // Each socket is read (answering the server's pings) until it ends.
    let ended = Arc::new(AtomicUsize::new(0));
    let holders: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let ended = ended.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
                ended.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let cpu_start = args.server_pid.and_then(cpu_ticks);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let cpu_end = args.server_pid.and_then(cpu_ticks);
    let after = args.server_pid.map(rss_kib).transpose()?;
    let still_open = ready - ended.load(Ordering::Relaxed);
    for h in &holders {
        h.abort();
    }

    println!(
        "ws-idle: {} websockets requested, first-message auth with one access token, {} handshakes at a time",
        args.connections, args.concurrency
    );
    println!(
        "  ready:     {ready} in {:.1} s ({failed} failed); still open after {} s: {still_open}",
        opening.as_secs_f64(),
        args.hold
    );
    if let Some(e) = first_error {
        println!("    first failure: {e}");
    }
    match (before, after) {
        (Some(b), Some(a)) => {
            let extra = ready.saturating_sub(1).max(1) as f64;
            println!(
                "  server RSS: {:.1} MB before, {:.1} MB with the sockets open: +{:.1} MB = {:.1} KiB per socket (target: 5,000 sockets <= 100 MB)",
                b as f64 / 1024.0,
                a as f64 / 1024.0,
                (a as f64 - b as f64) / 1024.0,
                (a as f64 - b as f64) / extra,
            );
        }
        _ => println!("  server RSS: not measured here (no --server-pid)"),
    }
    if let (Some(s), Some(e)) = (cpu_start, cpu_end) {
        // Linux reports in USER_HZ, 100 on every mainstream architecture.
        let busy = (e.saturating_sub(s)) as f64 / 100.0 / args.hold as f64 * 100.0;
        println!(
            "  server CPU while they idle: {busy:.0}% of one core (each socket re-checks its credential every second)"
        );
    }
    if failed > 0 || still_open < ready {
        bail!(
            "{failed} sockets failed to open and {} closed while idle",
            ready - still_open
        );
    }
    Ok(())
}
