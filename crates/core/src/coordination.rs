//! Redis (`PALISADE_REDIS_URL`): what several nodes share besides the database.
//!
//! It carries the per-address and per-user rate limits and the campaigns' pace per WhatsApp
//! connection (an atomic GCRA, one Lua script per key with Redis `TIME` as the clock, so the
//! nodes' clocks never matter), the realtime fan-out and
//! the auth cache's revocations (pub/sub, on connections of their own), and the API keys' usage
//! counters on their way to the database. Without the setting none of this exists and every
//! node works alone, as before.
//!
//! Threat: an attacker spreads a brute force over the nodes behind the balancer, getting N times
//! the budget; or takes Redis away (or it simply fails) so that the limits vanish.
//! Invariants:
//! - A limit asked of Redis holds across every node together (the script decides atomically).
//! - Redis being unreachable never means "no limit": the caller gets `None` and applies its
//!   node's in-process limit. Such a fallback is counted (`palisade_redis_fallbacks_total`) and
//!   logged at warn once per outage, not per request.
//! - An outage costs a request no waiting: after a failure Redis is not asked again for
//!   [`RETRY_AFTER`]; then one request probes it (the others keep falling back meanwhile), and
//!   every command has a short timeout.
//! - Nothing of a tenant's data is stored in Redis: limit keys are addresses and ids, pub/sub
//!   carries the same payloads PostgreSQL `NOTIFY` carries.

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a failed Redis is left alone before a request tries it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// The longest a command (or a connection attempt) may take before it counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Messages heard on a channel waiting to be handled; beyond this they are dropped.
const SUBSCRIPTION_QUEUE: usize = 16_384;

/// GCRA over one key: `ARGV[1]` is the emission interval (µs between requests at the sustained
/// rate), `ARGV[2]` the burst, `ARGV[3]` how many requests to take at most (1 for a rate limit's
/// single decision; the campaign pace takes a round's budget at once). The theoretical arrival
/// time (TAT) is kept in µs as an integer string (`%.0f`: Lua's default number format would
/// round it to 14 digits). Answers `{taken, 0}` when at least one was allowed (as many as the
/// budget holds, up to `ARGV[3]`), `{0, µs to wait}` when none was.
const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = emission * tonumber(ARGV[2])
local want = tonumber(ARGV[3] or '1')
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local room = math.floor((now + tolerance - tat) / emission)
if room < 1 then
  return {0, tat + emission - tolerance - now}
end
local n = math.min(room, want)
local new_tat = tat + emission * n
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {n, 0}
";

/// Gives `ARGV[2]` requests back to a GCRA key (taken with [`GCRA`] and not used): its TAT
/// moves back by that many emission intervals (`ARGV[1]`, µs), never before now.
const GCRA_GIVE_BACK: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local new_tat = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return 1
";

/// The hash of API key usage waiting to be written to the database.
const USAGE_KEY: &str = "api_key_usage";

/// Adds usage to the shared hash: `ARGV` in fours (id, requests, last use in µs, last address
/// or empty); the last use only moves forward.
const USAGE_ADD: &str = r"
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  redis.call('HINCRBY', KEYS[1], id .. ':n', ARGV[i + 1])
  local at = tonumber(redis.call('HGET', KEYS[1], id .. ':at') or '0')
  if tonumber(ARGV[i + 2]) > at then
    redis.call('HSET', KEYS[1], id .. ':at', ARGV[i + 2])
  end
  if ARGV[i + 3] ~= '' then
    redis.call('HSET', KEYS[1], id .. ':ip', ARGV[i + 3])
  end
end
return 1
";

/// A count over a sliding window kept in one hash: a field per bucket (its number), the
/// buckets older than `ARGV[2]` dropped. Adds `ARGV[3]` to bucket `ARGV[1]`, keeps the hash
/// `ARGV[4]` ms, and returns the sum before the addition.
const WINDOW_ADD: &str = r"
local oldest = tonumber(ARGV[2])
local before = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i]) < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  else
    before = before + tonumber(all[i + 1])
  end
end
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return before
";

/// Whether a URL is one the Redis client accepts (`redis://`, `rediss://`, `unix://`).
pub fn check_url(url: &str) -> Result<(), String> {
    // The parser's message may quote the URL, and the URL may hold a password: not shown.
    redis::Client::open(url).map(|_| ()).map_err(|_| {
        "PALISADE_REDIS_URL is not a Redis URL like redis://[:password@]host:port[/db] or \
         rediss://[:password@]host:port[/db] (TLS)"
            .to_owned()
    })
}

/// Checks the TLS settings with the URL: a CA file (`PALISADE_REDIS_CA_FILE`, PEM) only with a
/// `rediss://` URL, holding certificates the TLS client can load.
pub fn check_tls(url: &str, ca_pem: Option<&[u8]>) -> Result<(), String> {
    let Some(pem) = ca_pem else {
        return Ok(());
    };
    if !is_tls(url) {
        return Err(
            "PALISADE_REDIS_CA_FILE is set but PALISADE_REDIS_URL is not a rediss:// (TLS) URL"
                .to_owned(),
        );
    }
    if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err("PALISADE_REDIS_CA_FILE holds no PEM certificate".to_owned());
    }
    client(url, Some(pem)).map(|_| ())
}

/// Whether the URL asks for TLS (`rediss://`).
fn is_tls(url: &str) -> bool {
    url.trim_start()
        .to_ascii_lowercase()
        .starts_with("rediss://")
}

/// The client for `url`: over TLS for `rediss://`, trusting `ca_pem` when given and the
/// system's roots otherwise (rustls, with the host name verified).
fn client(url: &str, ca_pem: Option<&[u8]>) -> Result<redis::Client, String> {
    let built = match ca_pem {
        Some(pem) if is_tls(url) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        _ => redis::Client::open(url),
    };
    // The error may quote the URL, which may hold a password: only its kind is shown.
    built.map_err(|e| {
        format!(
            "PALISADE_REDIS_URL / PALISADE_REDIS_CA_FILE: {:?}",
            e.kind()
        )
    })
}

/// A node's link to Redis (see the module comment).
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: String,
    gcra: redis::Script,
    gcra_give_back: redis::Script,
    usage_add: redis::Script,
    window_add: redis::Script,
    started: Instant,
    /// Milliseconds since `started` before which Redis is not asked (after a failure); 0 while
    /// it answers.
    retry_at: AtomicU64,
    /// In an outage (for one warning per outage).
    down: AtomicBool,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects lazily: a node starts (and limits in-process) while Redis is unreachable, and
    /// uses it from the first request after it answers. Call within a Tokio runtime.
    pub fn new(url: &str, prefix: &str, ca_pem: Option<&[u8]>) -> Result<Redis, String> {
        check_url(url)?;
        check_tls(url, ca_pem)?;
        let client = client(url, ca_pem)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("PALISADE_REDIS_URL: {e}"))?;
        Ok(Redis {
            client,
            manager,
            prefix: prefix.trim_end_matches(':').to_owned(),
            gcra: redis::Script::new(GCRA),
            gcra_give_back: redis::Script::new(GCRA_GIVE_BACK),
            usage_add: redis::Script::new(USAGE_ADD),
            window_add: redis::Script::new(WINDOW_ADD),
            started: Instant::now(),
            retry_at: AtomicU64::new(0),
            down: AtomicBool::new(false),
        })
    }

    /// The Redis key (or channel) of `name`, under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether to ask Redis now: always while it answers; after a failure, only the first
    /// caller once [`RETRY_AFTER`] has passed (it probes; the others keep falling back).
    fn may_ask(&self) -> bool {
        let until = self.retry_at.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= until
            && self
                .retry_at
                .compare_exchange(until, now + retry_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.retry_at
            .store(self.now_ms().max(1) + retry_ms(), Ordering::Release);
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %error,
                what,
                "Redis is unreachable: rate limits fall back to this node's own, realtime and revocations to the database"
            );
        }
    }

    fn answered(&self) {
        if self.retry_at.load(Ordering::Acquire) != 0 {
            self.retry_at.store(0, Ordering::Release);
        }
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("Redis answers again: rate limits are shared across nodes again");
        }
    }

    /// Whether the last command failed and Redis has not answered since.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Runs `cmd` unless Redis is in its back-off after a failure; `None` when it was not
    /// asked or failed (the failure is recorded).
    async fn ask<T, F, Fut>(&self, what: &str, cmd: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.may_ask() {
            return None;
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd(self.manager.clone())).await {
            Ok(Ok(v)) => {
                self.answered();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(what, &"timed out");
                None
            }
        }
    }

    /// One GCRA decision for `key` (already prefixed by the caller's limit name): a sustained
    /// rate of one request per `emission`, bursts of `burst`. `Some(Ok)` allowed,
    /// `Some(Err(seconds to wait))` refused, `None` when Redis could not decide (fall back).
    pub async fn gcra(&self, key: &str, emission: Duration, burst: u32) -> Option<Result<(), u64>> {
        Some(match self.gcra_take(key, emission, burst, 1).await? {
            Ok(_) => Ok(()),
            Err(wait_us) => Err(wait_us.div_ceil(1_000_000).max(1)),
        })
    }

    /// Takes up to `want` requests at once from the GCRA budget of `key` (same rate and burst
    /// as [`Redis::gcra`]): `Some(Ok(n))` with `1 ≤ n ≤ want` taken, `Some(Err(µs to wait))`
    /// when none is left, `None` when Redis could not decide (fall back). What is taken and
    /// not used goes back with [`Redis::gcra_give_back`].
    pub async fn gcra_take(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
        want: u32,
    ) -> Option<Result<u32, u64>> {
        let key = self.key(key);
        let emission_us = emission_us(emission);
        let answer: (i64, i64) = self
            .ask("rate limit", |mut c| async move {
                self.gcra
                    .key(key)
                    .arg(emission_us)
                    .arg(burst)
                    .arg(want.max(1))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Some(match answer {
            (n, _) if n > 0 => Ok(u32::try_from(n).unwrap_or(want)),
            (_, wait_us) => Err(u64::try_from(wait_us).unwrap_or(0)),
        })
    }

    /// Gives `n` requests taken with [`Redis::gcra_take`] back to `key`'s budget. `false` when
    /// Redis did not take them (they are lost: the budget only refills late, never overflows).
    pub async fn gcra_give_back(&self, key: &str, emission: Duration, n: u32) -> bool {
        if n == 0 {
            return true;
        }
        let key = self.key(key);
        let emission_us = emission_us(emission);
        self.ask("rate limit", |mut c| async move {
            self.gcra_give_back
                .key(key)
                .arg(emission_us)
                .arg(n)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .is_some()
    }

    /// Adds `n` to the deployment's count `key` in bucket `bucket` and returns what the buckets
    /// from `oldest` on held before: a sliding window shared by the nodes, to the width of a
    /// bucket. The key lives `ttl` after its last addition. `None` when Redis did not answer
    /// (the caller counts on its own).
    pub async fn window_add(
        &self,
        key: &str,
        bucket: i64,
        oldest: i64,
        n: u64,
        ttl: Duration,
    ) -> Option<u64> {
        let key = self.key(key);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let before: i64 = self
            .ask("shared counter", |mut c| async move {
                self.window_add
                    .key(key)
                    .arg(bucket)
                    .arg(oldest)
                    .arg(n)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Some(u64::try_from(before).unwrap_or(0))
    }

    /// Whether Redis answers a `PING` now (for `/readyz`). Always asks, whatever the back-off.
    pub async fn ping(&self) -> bool {
        let mut c = self.manager.clone();
        let pong = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut c),
        )
        .await;
        match pong {
            Ok(Ok(_)) => {
                self.answered();
                true
            }
            Ok(Err(e)) => {
                self.failed("readiness check", &e);
                false
            }
            Err(_) => {
                self.failed("readiness check", &"timed out");
                false
            }
        }
    }

    /// Publishes each payload on `channel` (under the prefix), in order, in one round trip.
    /// `false` when Redis did not take them (they are lost, as a `NOTIFY` to a node whose
    /// listener is down is).
    pub async fn publish(&self, channel: &str, payloads: &[String]) -> bool {
        if payloads.is_empty() {
            return true;
        }
        let channel = self.key(channel);
        let mut pipe = redis::pipe();
        for p in payloads {
            pipe.cmd("PUBLISH").arg(&channel).arg(p).ignore();
        }
        self.ask("publish", |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await
        .is_some()
    }

    /// Adds API key usage (`id`, requests, last use in µs since the epoch, last address or
    /// empty) to the deployment's shared counters, atomically. `false` when Redis did not take
    /// it (the caller writes it to the database itself).
    pub async fn usage_add(&self, entries: &[(String, i64, i64, String)]) -> bool {
        if entries.is_empty() {
            return true;
        }
        let key = self.key(USAGE_KEY);
        let mut call = self.usage_add.key(key);
        for (id, n, at, ip) in entries {
            call.arg(id).arg(*n).arg(*at).arg(ip);
        }
        self.ask("usage counters", |mut c| async move {
            call.invoke_async::<i64>(&mut c).await
        })
        .await
        .is_some()
    }

    /// Takes every node's API key usage away atomically (read and delete in one transaction),
    /// so that what one node drains no other node drains too: `(field, value)` pairs,
    /// `<id>:n`, `<id>:at`, `<id>:ip`. `None` when Redis did not answer.
    pub async fn usage_take(&self) -> Option<Vec<(String, String)>> {
        let key = self.key(USAGE_KEY);
        let (entries,): (Vec<(String, String)>,) = self
            .ask("usage counters", |mut c| async move {
                redis::pipe()
                    .atomic()
                    .cmd("HGETALL")
                    .arg(&key)
                    .cmd("DEL")
                    .arg(&key)
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Some(entries)
    }

    /// Takes the lease `name` for `ttl` if no node holds it (`SET NX PX`): one node at a time
    /// does the work it guards, and a node that dies lets it go when the lease runs out.
    pub async fn try_lease(&self, name: &str, ttl: Duration) -> bool {
        let key = self.key(name);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.ask("lease", |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .flatten()
        .is_some()
    }

    /// Subscribes to `channel` (under the prefix) on a connection of its own, reconnecting
    /// after it is lost (messages published meanwhile are lost for this node). Resolves once
    /// subscribed, or after `wait` if Redis does not answer (the task keeps trying); the task
    /// ends when the receiver is dropped or the handle aborted.
    pub async fn subscribe(
        self: &Arc<Self>,
        channel: &str,
        wait: Duration,
    ) -> (mpsc::Receiver<String>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let channel = self.key(channel);
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                let connected = tokio::time::timeout(COMMAND_TIMEOUT, async {
                    let mut ps = this.client.get_async_pubsub().await?;
                    ps.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(ps)
                })
                .await;
                match connected {
                    Ok(Ok(mut ps)) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                        let mut messages = ps.on_message();
                        while let Some(m) = messages.next().await {
                            let Ok(payload) = m.get_payload::<String>() else {
                                continue;
                            };
                            if tx.is_closed() {
                                return;
                            }
                            if tx.try_send(payload).is_err() {
                                tracing::warn!(
                                    channel = %channel,
                                    "Redis subscription: a message was dropped (the queue is full)"
                                );
                            }
                        }
                        tracing::warn!(channel = %channel, "Redis subscription lost; reconnecting");
                    }
                    Ok(Err(e)) => this.failed("subscription", &e),
                    Err(_) => this.failed("subscription", &"timed out"),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        });
        let _ = tokio::time::timeout(wait, ready_rx).await;
        (rx, task)
    }
}

fn emission_us(emission: Duration) -> u64 {
    u64::try_from(emission.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn retry_ms() -> u64 {
    u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test Redis under a prefix of its own (so tests running at once never meet), or
    /// `None` (the test skips) when `PALISADE_TEST_REDIS_URL` is unset.
    fn test_redis(prefix: &str) -> Option<Arc<Redis>> {
        let Some(url) = std::env::var("PALISADE_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            eprintln!("skipped: set PALISADE_TEST_REDIS_URL to run with Redis");
            return None;
        };
        Some(Arc::new(Redis::new(&url, prefix, None).unwrap()))
    }

    fn prefix() -> String {
        format!("palisade-test-{}", uuid::Uuid::new_v4().simple())
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_refused_with_the_wait_for_one_more() {
        let Some(r) = test_redis(&prefix()) else {
            return;
        };
        // 5 a minute: one every 12 s, bursts of 5.
        let emission = Duration::from_secs(12);
        for i in 0..5 {
            assert_eq!(r.gcra("k", emission, 5).await, Some(Ok(())), "request {i}");
        }
        match r.gcra("k", emission, 5).await {
            Some(Err(wait)) => assert!((11..=12).contains(&wait), "{wait}"),
            other => panic!("the sixth was not refused: {other:?}"),
        }
        assert_eq!(
            r.gcra("other", emission, 5).await,
            Some(Ok(())),
            "another key has its own budget"
        );
    }

    #[tokio::test]
    async fn the_budget_refills_at_the_sustained_rate() {
        let Some(r) = test_redis(&prefix()) else {
            return;
        };
        // 10 a second: one every 100 ms.
        let emission = Duration::from_millis(100);
        for _ in 0..10 {
            assert_eq!(r.gcra("k", emission, 10).await, Some(Ok(())));
        }
        assert!(matches!(r.gcra("k", emission, 10).await, Some(Err(1))));
        tokio::time::sleep(Duration::from_millis(130)).await;
        assert_eq!(
            r.gcra("k", emission, 10).await,
            Some(Ok(())),
            "one more after one interval"
        );
        assert!(
            matches!(r.gcra("k", emission, 10).await, Some(Err(_))),
            "and only one"
        );
        // A full refill after the whole period; the key expires once it is full again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for _ in 0..10 {
            assert_eq!(r.gcra("k", emission, 10).await, Some(Ok(())));
        }
        let mut c = r.manager.clone();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(r.key("k"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(
            (1..=1000).contains(&ttl),
            "the key lives until full: {ttl} ms"
        );
    }

    /// A round's budget taken at once: as many as the burst holds, then none with the wait for
    /// the next; what is given back can be taken again.
    #[tokio::test]
    async fn a_budget_is_taken_at_once_and_what_is_given_back_is_taken_again() {
        let Some(r) = test_redis(&prefix()) else {
            return;
        };
        // 10 a second: one every 100 ms, bursts of 10.
        let emission = Duration::from_millis(100);
        assert_eq!(r.gcra_take("k", emission, 10, 4).await, Some(Ok(4)));
        assert_eq!(r.gcra_take("k", emission, 10, 50).await, Some(Ok(6)));
        match r.gcra_take("k", emission, 10, 5).await {
            Some(Err(wait_us)) => assert!((1..=100_000).contains(&wait_us), "{wait_us}"),
            other => panic!("the budget was spent: {other:?}"),
        }
        assert!(r.gcra_give_back("k", emission, 3).await);
        assert_eq!(r.gcra_take("k", emission, 10, 5).await, Some(Ok(3)));
        // Giving back more than was taken only fills the budget.
        assert!(r.gcra_give_back("k", emission, 100).await);
        assert_eq!(r.gcra_take("k", emission, 10, 50).await, Some(Ok(10)));
    }

    /// Many requests at once from two nodes (two clients, like two processes): never more than
    /// the limit gets through, and exactly the limit does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_requests_from_two_nodes_never_exceed_the_limit() {
        let p = prefix();
        let (Some(a), Some(b)) = (test_redis(&p), test_redis(&p)) else {
            return;
        };
        let emission = Duration::from_secs(360); // 10 an hour
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { node.gcra("k", emission, 10).await })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Some(Ok(())) => allowed += 1,
                Some(Err(_)) => {}
                None => panic!("Redis did not answer"),
            }
        }
        assert_eq!(allowed, 10);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_not_asked_again_until_the_back_off_ends() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = Redis::new(&format!("redis://127.0.0.1:{port}"), "t", None).unwrap();
        assert_eq!(r.gcra("k", Duration::from_secs(1), 1).await, None);
        assert!(r.is_down());
        // Within the back-off nothing is sent: the answer is immediate.
        let started = Instant::now();
        for _ in 0..100 {
            assert_eq!(r.gcra("k", Duration::from_secs(1), 1).await, None);
        }
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(!r.ping().await);
    }

    #[test]
    fn urls_are_checked_without_echoing_them() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("redis://:pw@redis.internal:6380").is_ok());
        let e = check_url("http://:s3cret@x").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(check_url("rediss://:s3cret@redis.internal:6380").is_ok());
        let e = check_tls("redis://:s3cret@redis.internal:6380", Some(b"x")).unwrap_err();
        assert!(
            e.contains("not a rediss://") && !e.contains("s3cret"),
            "{e}"
        );
        let e = check_tls("rediss://:s3cret@redis.internal:6380", Some(b"junk")).unwrap_err();
        assert!(
            e.contains("no PEM certificate") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(check_tls("rediss://redis.internal:6380", None).is_ok());
    }

    /// Runs `openssl` with `args` in `dir`.
    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (the TLS test makes its certificates with it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// A new P-256 key `key` and, for the subject `cn`, a self-signed certificate (`x509`) or
    /// a signing request, named `out`.
    fn new_key(dir: &std::path::Path, x509: bool, key: &str, out: &str, cn: &str) {
        let subject = format!("/CN={cn}");
        let mut args = vec!["req"];
        if x509 {
            args.extend(["-x509", "-days", "2"]);
        }
        args.extend([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ]);
        args.extend(["-keyout", key, "-out", out, "-subj", &subject]);
        openssl(dir, &args);
    }

    /// A certificate authority `name`.crt/.key in `dir`.
    fn make_ca(dir: &std::path::Path, name: &str) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        new_key(dir, true, &key, &crt, "palisade test ca");
    }

    /// A Redis that speaks only TLS, with a certificate for 127.0.0.1 signed by the CA `ca`,
    /// killed when dropped.
    struct TlsRedis(std::process::Child, u16);

    impl Drop for TlsRedis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn tls_redis(dir: &std::path::Path) -> TlsRedis {
        make_ca(dir, "ca");
        new_key(dir, false, "server.key", "server.csr", "127.0.0.1");
        std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--dir", "."])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (the TLS test starts one of its own)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsRedis(child, port)
    }

    /// `rediss://` end to end against a Redis of its own that speaks only TLS: trusted through
    /// `PALISADE_REDIS_CA_FILE`'s CA it answers; a certificate from another CA, or none given
    /// (the system roots do not hold the test CA), is refused, so the server's certificate is
    /// checked. Runs where the Redis tests run (`PALISADE_TEST_REDIS_URL`, as in CI), which
    /// provide `redis-server` and `openssl`.
    #[tokio::test]
    async fn rediss_verifies_the_server_against_the_configured_ca() {
        if std::env::var("PALISADE_TEST_REDIS_URL").is_err() {
            eprintln!("skipped: PALISADE_TEST_REDIS_URL is not set");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = tls_redis(dir.path());
        let url = format!("rediss://127.0.0.1:{}", server.1);
        let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
        let trusted = Redis::new(&url, "t", Some(&ca)).unwrap();
        let mut answered = false;
        for _ in 0..40 {
            if trusted.ping().await {
                answered = true;
                break;
            }
            // After a failure the client waits a second before asking again.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "Redis over TLS with the configured CA answers");
        assert_eq!(
            trusted.gcra("tls", Duration::from_secs(60), 1).await,
            Some(Ok(()))
        );

        make_ca(dir.path(), "other");
        let other = std::fs::read(dir.path().join("other.crt")).unwrap();
        let wrong = Redis::new(&url, "t", Some(&other)).unwrap();
        assert!(
            !wrong.ping().await,
            "a certificate from another CA is refused"
        );
        let system_roots = Redis::new(&url, "t", None).unwrap();
        assert!(
            !system_roots.ping().await,
            "the test CA is not a system root"
        );
        let plain = Redis::new(&format!("redis://127.0.0.1:{}", server.1), "t", None).unwrap();
        assert!(
            !plain.ping().await,
            "the TLS port does not speak plain Redis"
        );
    }
}
