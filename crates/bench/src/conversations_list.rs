//! `GET /api/v1/conversations` at scale: one tenant with `--conversations` conversations (each
//! with one or two inbound messages, their activity spread over 30 days, so the activity order is
//! not the creation order) and `--noise-tenants` other tenants with `--noise-conversations`
//! each, all written through the signed webhook endpoint (the real inbound path). Then a tenth
//! of the tenant's conversations are worked through `PATCH` (labels `billing`, and `vip` on a
//! hundredth; assigned to the owner on a twentieth; `pending` on a thirtieth), and each filter's
//! first page and a deep page (half-way through its rows) are read `--samples` times, one
//! request at a time; the latency of each answer is measured at the client.

use crate::{connect_number, quantile, register};
use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Palisade server.
    #[arg(long, default_value = "http://127.0.0.1:18284")]
    server: String,
    /// The simulator the server's Graph base URL points at (to create the numbers).
    #[arg(long, default_value = "http://127.0.0.1:18291")]
    sim: String,
    /// Conversations of the measured tenant.
    #[arg(long, default_value_t = 100_000)]
    conversations: u64,
    /// Other tenants, seeded first and in between, whose rows share the tables.
    #[arg(long, default_value_t = 2)]
    noise_tenants: u64,
    /// Conversations of each other tenant.
    #[arg(long, default_value_t = 20_000)]
    noise_conversations: u64,
    /// Requests per measured page.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Items per measured page.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// The filters measured: every one the list has, and one combination.
const QUERIES: [&str; 8] = [
    "",
    "status=open",
    "status=pending",
    "assignee=me",
    "assignee=unassigned",
    "label=vip",
    "label=billing",
    "label=vip&status=pending",
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()?;
    let started = Instant::now();
    let mut measured = None;
    // The measured tenant is the second one seeded (its rows sit between other tenants' rows).
    let measured_index = args.noise_tenants.min(1);
    for t in 0..=args.noise_tenants {
        let owner = register(&client, &args.server).await?;
        let n = if t == measured_index {
            args.conversations
        } else {
            args.noise_conversations
        };
        seed(&client, &args.server, &args.sim, &owner, n, t).await?;
        if t == measured_index {
            measured = Some(owner);
        }
        eprintln!(
            "  {:>4.0} s: tenant {t} seeded ({n} conversations)",
            started.elapsed().as_secs_f64()
        );
    }
    let owner = measured.context("no measured tenant")?;
    let ids = walk(&client, &args.server, &owner.token, "", 200, usize::MAX)
        .await?
        .0;
    if (ids.len() as u64) < args.conversations {
        bail!(
            "the tenant lists {} conversations, expected {}",
            ids.len(),
            args.conversations
        );
    }
    let me = get(&client, &format!("{}/api/v1/me", args.server), &owner.token).await?;
    let me = me["id"].as_str().context("no user id")?.to_owned();
    let patches: Vec<(String, Value)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0)
        .map(|(i, id)| {
            let labels = if i % 100 == 0 {
                json!(["vip", "billing"])
            } else {
                json!(["billing"])
            };
            let mut body = json!({"labels": labels});
            if i % 20 == 0 {
                body["assignee_id"] = json!(me);
            }
            if i % 30 == 0 {
                body["status"] = json!("pending");
            }
            (id.clone(), body)
        })
        .collect();
    let worked = patches.len();
    stream::iter(patches)
        .map(|(id, body)| {
            let (client, server, token) = (&client, &args.server, &owner.token);
            async move {
                let r = client
                    .patch(format!("{server}/api/v1/conversations/{id}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("PATCH answered {}: {}", r.status(), r.text().await?);
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "  {:>4.0} s: {worked} conversations worked (labels, assignee, status)",
        started.elapsed().as_secs_f64()
    );

    println!(
        "conversations-list: {} conversations in the tenant, {} other tenants of {} each; {} requests per page of {}, one at a time",
        args.conversations, args.noise_tenants, args.noise_conversations, args.samples, args.limit
    );
    println!(
        "  {:<26} {:>7} | {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "filter", "rows", "first50", "first99", "deep at", "deep50", "deep99"
    );
    let mut worst: f64 = 0.0;
    for q in QUERIES {
        let (all, _) = walk(&client, &args.server, &owner.token, q, 200, usize::MAX).await?;
        let first = format!(
            "{}/api/v1/conversations?{q}&limit={}",
            args.server, args.limit
        );
        let first_ms = sample(&client, &first, &owner.token, args.samples).await?;
        // A deep page: the cursor half-way through the filter's rows.
        let half = all.len() / 2;
        let (_, cursor) = walk(&client, &args.server, &owner.token, q, 200, half).await?;
        let (deep_at, deep_ms) = match cursor {
            Some(c) => {
                let url = format!(
                    "{}/api/v1/conversations?{q}&limit={}&cursor={c}",
                    args.server, args.limit
                );
                (
                    half,
                    sample(&client, &url, &owner.token, args.samples).await?,
                )
            }
            None => (0, Vec::new()),
        };
        let shown = if q.is_empty() { "(none)" } else { q };
        println!(
            "  {:<26} {:>7} | {:>6.2}ms {:>6.2}ms | {:>8} {:>6.2}ms {:>6.2}ms",
            shown,
            all.len(),
            quantile(&first_ms, 0.50),
            quantile(&first_ms, 0.99),
            deep_at,
            quantile(&deep_ms, 0.50),
            quantile(&deep_ms, 0.99),
        );
        worst = worst
            .max(quantile(&first_ms, 0.99))
            .max(if deep_ms.is_empty() {
                0.0
            } else {
                quantile(&deep_ms, 0.99)
            });
    }
    println!("  worst p99: {worst:.2} ms (target ≤ 20 ms)");
    Ok(())
}

/// `n` conversations in a fresh number of `owner`'s tenant: webhook POSTs of 50 messages, one
/// per customer, then a second message for every fifth customer; activity times spread over 30
/// days, pseudo-randomly (seeded by `salt`, so runs repeat).
async fn seed(
    client: &reqwest::Client,
    server: &str,
    sim: &str,
    owner: &crate::Owner,
    n: u64,
    salt: u64,
) -> anyhow::Result<()> {
    let number = connect_number(client, server, sim, owner).await?;
    let url = format!("{server}/webhooks/whatsapp/{}", number.connection_id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let customers: Vec<u64> = (0..n).chain((0..n).step_by(5)).collect();
    let bodies: Vec<Vec<u8>> = customers
        .chunks(50)
        .enumerate()
        .map(|(b, chunk)| {
            let messages: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let spread = mix(salt, b as u64 * 50 + i as u64) % (30 * 86_400);
                    json!({
                        "from": (15_550_000_000u64 + c).to_string(),
                        "id": format!("wamid.list{}", uuid::Uuid::new_v4().simple()),
                        "timestamp": (now - spread as i64).to_string(),
                        "type": "text",
                        "text": {"body": "Hello, I would like to know the status of my order number 12345, it has not arrived yet."},
                    })
                })
                .collect();
            let contacts: Vec<Value> = chunk
                .iter()
                .map(|c| json!({"profile": {"name": format!("Customer {c}")}, "wa_id": (15_550_000_000u64 + c).to_string()}))
                .collect();
            serde_json::to_vec(&json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "bench-waba", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": number.display_phone_number, "phone_number_id": number.phone_number_id},
                    "contacts": contacts, "messages": messages,
                }}]}],
            }))
            .unwrap_or_default()
        })
        .collect();
    stream::iter(bodies)
        .map(|body| {
            let (client, url, secret) = (client, &url, &number.app_secret);
            async move {
                let r = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sign(secret, &body))
                    .body(body)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("webhook answered {}", r.status());
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// A pseudo-random number from `salt` and `i` (splitmix64).
fn mix(salt: u64, i: u64) -> u64 {
    let mut z = salt
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pages through `query` `page` at a time until `stop` ids were read or the list ended;
/// returns the ids and the cursor after them. Checks that no id comes twice.
async fn walk(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    query: &str,
    page: usize,
    stop: usize,
) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let mut ids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    while ids.len() < stop {
        let take = page.min(stop - ids.len());
        let url = match &cursor {
            Some(c) => format!("{server}/api/v1/conversations?{query}&limit={take}&cursor={c}"),
            None => format!("{server}/api/v1/conversations?{query}&limit={take}"),
        };
        let body = get(client, &url, token).await?;
        for c in body["data"].as_array().context("no data")? {
            let id = c["id"].as_str().context("no id")?.to_owned();
            if !seen.insert(id.clone()) {
                bail!("{query}: {id} came twice");
            }
            ids.push(id);
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok((ids, None)),
        }
    }
    Ok((ids, cursor))
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let r = client.get(url).bearer_auth(token).send().await?;
    if !r.status().is_success() {
        bail!("GET {url} answered {}: {}", r.status(), r.text().await?);
    }
    Ok(r.json().await?)
}

/// `n` sequential GETs of `url`; their latencies in milliseconds, sorted.
async fn sample(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    // Warm the connection and the server's caches first.
    for _ in 0..5 {
        get(client, url, token).await?;
    }
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(url).bearer_auth(token).send().await?;
        let ok = r.status().is_success();
        r.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            bail!("GET {url} failed during sampling");
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
