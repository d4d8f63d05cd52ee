//! `campaign`: a broadcast campaign to `--recipients` opted-in contacts at the server's
//! configured pace (`PALISADE_CAMPAIGN_MESSAGES_PER_SECOND`, told to the bench as `--rate`),
//! while an agent replies in inbox conversations every `--reply-every-ms`.
//!
//! The simulator is the clock: it stamps every send it accepts (`at_ms`), so the achieved pace
//! is the campaign's sends from the first to the last as the simulator saw them (and per 10 s
//! window), and a reply's latency is from just before its `POST …/messages` to the simulator's
//! stamp of that send (one machine, one clock). The outbound list is read only every few seconds,
//! so the bench does not take CPU from the server it measures.
//!
//! The replies go round `--conversations` customers who wrote first (their 24-hour window is
//! open), so no customer is messaged more than Meta's pair rate allows in a two-minute run; the
//! simulator's pair limit is turned off all the same for slower paces (`--rate 20` takes
//! 8 minutes for 10,000), and its per-number throughput is raised above the pace plus the
//! replies: the figure is Palisade's pace, not Meta's throttling of it.

use crate::{connect_number, quantile, register};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18285")]
    server: String,
    /// The simulator the server's Graph base URL points at.
    #[arg(long, default_value = "http://127.0.0.1:18292")]
    sim: String,
    /// Campaign recipients (contacts created through the API, opted in to marketing).
    #[arg(long, default_value_t = 10_000)]
    recipients: usize,
    /// The server's PALISADE_CAMPAIGN_MESSAGES_PER_SECOND (what the pace is compared with).
    #[arg(long, default_value_t = 80)]
    rate: u32,
    /// An agent's reply every this many milliseconds while the campaign runs.
    #[arg(long, default_value_t = 200)]
    reply_every_ms: u64,
    /// Customers who wrote first; the replies go round them.
    #[arg(long, default_value_t = 20)]
    conversations: usize,
    /// Concurrent contact creations while seeding.
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
    /// Seconds to wait for the campaign beyond its expected duration.
    #[arg(long, default_value_t = 120)]
    slack: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn check(r: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{what} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.recipients == 0 || args.rate == 0 || args.conversations == 0 {
        bail!("--recipients, --rate and --conversations must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.seed_concurrency.max(4))
        .build()?;
    let sim = args.sim.trim_end_matches('/').to_owned();
    let server = args.server.trim_end_matches('/').to_owned();
    let owner = register(&client, &server).await?;
    let number = connect_number(&client, &server, &sim, &owner).await?;
    check(
        client
            .post(format!("{sim}/_sim/config"))
            .json(&json!({
                "pair_burst": 0,
                "throughput_per_second": args.rate.saturating_mul(2).max(1000),
            }))
            .send()
            .await?,
        "simulator config",
    )
    .await?;
    check(
        client
            .post(format!(
                "{sim}/_sim/phone-numbers/{}/subscribe",
                number.phone_number_id
            ))
            .json(&json!({
                "callback_url": format!("{server}/webhooks/whatsapp/{}", number.connection_id),
                "verify_token": number.verify_token,
            }))
            .send()
            .await?,
        "simulator subscribe",
    )
    .await?;
    check(
        client
            .post(format!("{server}/api/v1/whatsapp/templates/sync"))
            .bearer_auth(&owner.token)
            .json(&json!({"connection_id": number.connection_id}))
            .send()
            .await?,
        "template sync",
    )
    .await?;

    // The audience, tagged so the customers below are not in it.
    let seeding = Instant::now();
    let token = Arc::new(owner.token.clone());
    let permits = Arc::new(tokio::sync::Semaphore::new(args.seed_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.recipients {
        let permit = permits.clone().acquire_owned().await?;
        let (client, server, token) = (client.clone(), server.clone(), token.clone());
        tasks.spawn(async move {
            let r = client
                .post(format!("{server}/api/v1/contacts"))
                .bearer_auth(token.as_str())
                .json(&json!({
                    "phone": format!("+4477{:08}", 10_000_000 + i),
                    "name": format!("Bench Recipient {i}"),
                    "tags": ["bench-campaign"],
                    "marketing_opt_in": true,
                }))
                .send()
                .await;
            drop(permit);
            check(r?, "contact create").await.map(|_| ())
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let seed_s = seeding.elapsed().as_secs_f64();
    eprintln!(
        "  seeded {} contacts in {seed_s:.1} s ({:.0}/s)",
        args.recipients,
        args.recipients as f64 / seed_s
    );

    // Customers write first, through the simulator (which opens their window).
    let mut customers = Vec::new();
    for c in 0..args.conversations {
        let from = format!("4478{:08}", 20_000_000 + c);
        check(
            client
                .post(format!("{sim}/_sim/inbound"))
                .json(&json!({
                    "phone_number_id": number.phone_number_id,
                    "from": from,
                    "profile_name": format!("Bench Customer {c}"),
                    "type": "text",
                    "text": {"body": "Hello, is my order on its way?"},
                }))
                .send()
                .await?,
            "simulator inbound",
        )
        .await?;
        customers.push(from);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let conversations: Vec<String> = loop {
        let page = check(
            client
                .get(format!("{server}/api/v1/conversations?limit=200"))
                .bearer_auth(&owner.token)
                .send()
                .await?,
            "conversation list",
        )
        .await?;
        let ids: Vec<String> = page["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() >= args.conversations {
            break ids;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} conversations arrived",
                ids.len(),
                args.conversations
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let campaign = check(
        client
            .post(format!("{server}/api/v1/campaigns"))
            .bearer_auth(&owner.token)
            .json(&json!({
                "name": "Bench campaign",
                "connection_id": number.connection_id,
                "template": {"name": "order_confirmation", "language": "en_US"},
                "parameters": [
                    {"type": "contact_field", "field": "name", "fallback": "friend"},
                    {"type": "literal", "value": "BENCH"}
                ],
                "audience": {"tags": ["bench-campaign"]},
            }))
            .send()
            .await?,
        "campaign create",
    )
    .await?;
    let id = campaign["id"]
        .as_str()
        .context("no campaign id")?
        .to_owned();
    let started_ms = unix_ms();
    check(
        client
            .post(format!("{server}/api/v1/campaigns/{id}/start"))
            .bearer_auth(&owner.token)
            .json(&json!({}))
            .send()
            .await?,
        "campaign start",
    )
    .await?;

    // The agent: a reply every period, round the conversations, until the campaign is sent.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let agent = {
        let (client, server, token, done) =
            (client.clone(), server.clone(), token.clone(), done.clone());
        let every = Duration::from_millis(args.reply_every_ms.max(1));
        tokio::spawn(async move {
            let mut posted: Vec<(String, u64, f64)> = Vec::new(); // (text, unix ms, POST ms)
            let mut refused = 0u64;
            let mut tick = tokio::time::interval(every);
            let mut k = 0usize;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let Some(conversation) = conversations.get(k % conversations.len()) else {
                    break;
                };
                let text = format!("bench reply #{k}");
                let at = unix_ms();
                let t = Instant::now();
                let r = client
                    .post(format!(
                        "{server}/api/v1/conversations/{conversation}/messages"
                    ))
                    .bearer_auth(token.as_str())
                    .json(&json!({"type": "text", "text": {"body": text}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        posted.push((text, at, t.elapsed().as_secs_f64() * 1000.0));
                    }
                    _ => refused += 1,
                }
                k += 1;
            }
            (posted, refused)
        })
    };

    // Read the simulator's record every few seconds until every recipient was sent to (or the
    // campaign is over with the rest failed or skipped).
    let expected = Duration::from_secs_f64(args.recipients as f64 / f64::from(args.rate));
    let deadline = Instant::now() + expected + Duration::from_secs(args.slack);
    let outbound_url = format!(
        "{sim}/_sim/phone-numbers/{}/outbound",
        number.phone_number_id
    );
    let (outbound, detail) = loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let outbound = check(
            client.get(&outbound_url).send().await?,
            "simulator outbound",
        )
        .await?;
        let templates = outbound
            .as_array()
            .map_or(0, |a| a.iter().filter(|m| m["type"] == "template").count());
        let detail = check(
            client
                .get(format!("{server}/api/v1/campaigns/{id}"))
                .bearer_auth(&owner.token)
                .send()
                .await?,
            "campaign",
        )
        .await?;
        let settled = detail["status"] == "completed" && detail["counts"]["queued"] == 0;
        if templates >= args.recipients || settled {
            break (outbound, detail);
        }
        if Instant::now() > deadline {
            eprintln!("  gave up waiting: {templates} of {} sent", args.recipients);
            break (outbound, detail);
        }
    };
    // A last reply or two in flight.
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (posted, refused) = agent.await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outbound = match check(
        client.get(&outbound_url).send().await?,
        "simulator outbound",
    )
    .await
    {
        Ok(v) => v,
        Err(_) => outbound,
    };
    let list = outbound.as_array().cloned().unwrap_or_default();

    // The pace.
    let mut per_to: HashMap<&str, usize> = HashMap::new();
    let mut sends: Vec<u64> = Vec::new();
    let mut reply_at: HashMap<&str, u64> = HashMap::new();
    for m in &list {
        let at = m["at_ms"].as_u64().unwrap_or(0);
        if m["type"] == "template" {
            *per_to.entry(m["to"].as_str().unwrap_or("")).or_default() += 1;
            sends.push(at);
        } else if let Some(text) = m["body"]["text"]["body"].as_str() {
            reply_at.insert(text, at);
        }
    }
    sends.sort_unstable();
    let twice = per_to.values().filter(|n| **n > 1).count();
    let (first, last) = (
        sends.first().copied().unwrap_or(0),
        sends.last().copied().unwrap_or(0),
    );
    let span_s = (last.saturating_sub(first)) as f64 / 1000.0;
    let achieved = if span_s > 0.0 {
        (sends.len().saturating_sub(1)) as f64 / span_s
    } else {
        f64::NAN
    };
    let mut windows: BTreeMap<u64, u64> = BTreeMap::new();
    for at in &sends {
        *windows.entry((at - first) / 10_000).or_default() += 1;
    }
    // The last window is partial.
    let full: Vec<f64> = windows
        .iter()
        .filter(|(w, _)| Some(**w) != windows.keys().next_back().copied())
        .map(|(_, n)| *n as f64 / 10.0)
        .collect();
    let mut sorted_windows = full.clone();
    sorted_windows.sort_by(f64::total_cmp);

    // The replies.
    let mut latencies: Vec<f64> = Vec::new();
    let mut post_ms: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    for (text, at, ms) in &posted {
        post_ms.push(*ms);
        match reply_at.get(text.as_str()) {
            Some(sent) => latencies.push(sent.saturating_sub(*at) as f64),
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    post_ms.sort_by(f64::total_cmp);

    let rate = f64::from(args.rate);
    println!(
        "campaign: {} recipients at PALISADE_CAMPAIGN_MESSAGES_PER_SECOND={}",
        args.recipients, args.rate
    );
    println!(
        "  sent (simulator): {} templates to {} recipients, {twice} received twice; first send {:.1} s after the start",
        sends.len(),
        per_to.len(),
        first.saturating_sub(started_ms) as f64 / 1000.0
    );
    println!(
        "  pace: {achieved:.1}/s over {span_s:.1} s ({:+.1}% of the setting)",
        (achieved / rate - 1.0) * 100.0
    );
    println!(
        "  per 10 s window (full windows: {}): min {:.1}/s, median {:.1}/s, max {:.1}/s; outside ±10%: {}",
        sorted_windows.len(),
        sorted_windows.first().copied().unwrap_or(f64::NAN),
        quantile(&sorted_windows, 0.5),
        sorted_windows.last().copied().unwrap_or(f64::NAN),
        full.iter()
            .filter(|w| (**w / rate - 1.0).abs() > 0.10)
            .count()
    );
    println!("  windows: {full:?}");
    println!(
        "  agent replies: {} posted ({refused} refused), {} seen by the simulator, {missing} not; POST → simulator p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (POST answer p50 {:.1} ms, p99 {:.1} ms)",
        posted.len(),
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        quantile(&post_ms, 0.5),
        quantile(&post_ms, 0.99),
    );
    println!(
        "  campaign: status {}, counts {}, failures {}",
        detail["status"], detail["counts"], detail["failures"]
    );
    Ok(())
}
