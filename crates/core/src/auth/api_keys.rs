//! API keys as credentials: format, authentication, usage tracking.
//!
//! Threat: leaked, guessed, mistyped or stale integration keys. Invariants:
//! - Format: `pal_live_` + 43 base62 characters (256 bits from the OS RNG) + 6 base62 characters
//!   of CRC32 over the random part. A secret scanner recognises keys with
//!   [`KEY_PATTERN`]; [`checksum_ok`] rejects a mistyped or random string offline, before any
//!   lookup.
//! - Only the SHA-256 hash of a key is stored; lookup is by that hash (a unique index), cached
//!   per node. A revoked, deleted, expired or IP-disallowed key gets 401 at once; revocation
//!   reaches other nodes through the auth change feed within a second.
//! - Usage (`last_used_at`, last IP, `total_requests`) is counted in memory and flushed every
//!   30 seconds: no database write per request. With Redis (`PALISADE_REDIS_URL`) every node
//!   adds its counts to one hash in Redis and one node at a time (a 20-second lease) writes
//!   the sum, so the database sees one write per key per round whatever the number of nodes;
//!   when Redis does not answer a node writes its own counts, as without Redis. A request counts once; an open websocket
//!   counts once, when it opens (its per-second re-checks use [`verify`], which does not count).

use super::cache::ApiKeySnapshot;
use crate::error::code;
use crate::worker::Next;
use crate::{AppError, AppResult, Services, SystemActor, UnitOfWork};
use dashmap::DashMap;
use palisade_domain::ApiKeyId;
use palisade_store::{api_keys, SystemScope};
use rand::RngCore;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub const PREFIX: &str = "pal_live_";
/// Matches exactly the keys Palisade issues (for secret scanners).
pub const KEY_PATTERN: &str = r"\bpal_live_[0-9A-Za-z]{49}\b";
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECK_LEN: usize = 6;

fn base62_fixed(mut n: u64, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        let idx = usize::try_from(n % 62).unwrap_or(0);
        *slot = ALPHABET.get(idx).copied().unwrap_or(b'0');
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn checksum(random: &str) -> String {
    base62_fixed(u64::from(crc32fast::hash(random.as_bytes())), CHECK_LEN)
}

/// A new key: 43 uniformly random base62 characters (rejection sampling keeps it unbiased).
pub fn generate() -> String {
    let mut random = String::with_capacity(RANDOM_LEN);
    let mut buf = [0u8; 64];
    while random.len() < RANDOM_LEN {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        for b in buf {
            if random.len() < RANDOM_LEN && b < 248 {
                if let Some(c) = ALPHABET.get(usize::from(b % 62)) {
                    random.push(char::from(*c));
                }
            }
        }
    }
    format!("{PREFIX}{random}{}", checksum(&random))
}

/// Whether `key` has our shape and a correct checksum.
pub fn checksum_ok(key: &str) -> bool {
    let Some(body) = key.strip_prefix(PREFIX) else {
        return false;
    };
    if body.len() != RANDOM_LEN + CHECK_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, check) = body.split_at(RANDOM_LEN);
    checksum(random) == check
}

/// The part of a key shown in lists.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(PREFIX.len() + 6).collect()
}

fn invalid(message: &str) -> AppError {
    AppError::Unauthenticated {
        code: code::INVALID_API_KEY,
        message: message.to_owned(),
    }
}

/// The key behind `key`, if it is valid for a request from `ip` now; counts one use of it.
pub async fn authenticate(
    s: &Services,
    key: &str,
    ip: Option<IpAddr>,
) -> AppResult<Arc<ApiKeySnapshot>> {
    let snap = verify(s, key, ip).await?;
    s.api_key_usage.record(snap.id, s.now(), ip);
    crate::detections::api_key_used(s, snap.tenant_id, snap.id, &snap.name, ip);
    Ok(snap)
}

/// The key behind `key`, if it is still valid for `ip` now, without counting a use: for
/// re-checking a credential already counted (an open websocket counts once, when it opens,
/// not once per second of connection).
pub async fn verify(s: &Services, key: &str, ip: Option<IpAddr>) -> AppResult<Arc<ApiKeySnapshot>> {
    if !checksum_ok(key) {
        return Err(invalid("the API key is malformed (bad checksum)"));
    }
    let hash = super::tokens::secret_hash(key);
    let snap = match s.auth_cache.api_key(&hash) {
        Some(k) => k,
        None => {
            let epoch = s.auth_cache.epoch();
            let mut tx = s
                .store
                .begin_read(SystemScope::new("api_key.lookup"))
                .await?;
            let k = api_keys::find_by_hash(&mut tx, &hash)
                .await?
                .ok_or_else(|| invalid("the API key is not valid"))?;
            let snap = Arc::new(ApiKeySnapshot::from(&k));
            s.auth_cache.offer_api_key(epoch, hash, snap.clone());
            snap
        }
    };
    let now = s.now();
    if snap.revoked {
        return Err(invalid("the API key has been revoked"));
    }
    if snap.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid("the API key has expired"));
    }
    if let Some(allowed) = &snap.allowed_ips {
        // Compared in canonical form: `::ffff:a.b.c.d` is `a.b.c.d` on either side.
        if !ip.is_some_and(|ip| {
            allowed
                .iter()
                .any(|n| crate::client_address::net_contains(n, ip))
        }) {
            return Err(invalid("the API key is not allowed from this address"));
        }
    }
    Ok(snap)
}

#[derive(Debug, Clone)]
struct Usage {
    requests: i64,
    last_used_at: OffsetDateTime,
    last_ip: Option<IpAddr>,
}

/// Per-node usage counters, flushed to the database periodically.
#[derive(Default)]
pub struct UsageBuffer {
    pending: DashMap<ApiKeyId, Usage>,
}

impl UsageBuffer {
    pub fn record(&self, key: ApiKeyId, at: OffsetDateTime, ip: Option<IpAddr>) {
        let mut e = self.pending.entry(key).or_insert(Usage {
            requests: 0,
            last_used_at: at,
            last_ip: ip,
        });
        e.requests += 1;
        e.last_used_at = e.last_used_at.max(at);
        if ip.is_some() {
            e.last_ip = ip;
        }
    }

    fn add(&self, key: ApiKeyId, u: Usage) {
        let mut e = self.pending.entry(key).or_insert(Usage {
            requests: 0,
            last_used_at: u.last_used_at,
            last_ip: None,
        });
        e.requests += u.requests;
        e.last_used_at = e.last_used_at.max(u.last_used_at);
        if u.last_ip.is_some() {
            e.last_ip = u.last_ip;
        }
    }

    fn take(&self) -> Vec<(ApiKeyId, Usage)> {
        let ids: Vec<ApiKeyId> = self.pending.iter().map(|e| *e.key()).collect();
        ids.into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .collect()
    }

    /// Writes what was counted since the last flush: to the database, or with Redis into the
    /// deployment's shared counters, which one node at a time then writes (see the module
    /// comment).
    pub async fn flush(&self, s: &Services) -> anyhow::Result<()> {
        let taken = self.take();
        let Some(redis) = &s.redis else {
            return self.write(s, taken).await;
        };
        if !redis.usage_add(&shared_entries(&taken)).await {
            // Redis did not take them: this node writes its own, as without Redis.
            return self.write(s, taken).await;
        }
        if !redis
            .try_lease("api_key_usage_writer", Duration::from_secs(20))
            .await
        {
            return Ok(());
        }
        let Some(fields) = redis.usage_take().await else {
            return Ok(());
        };
        let all = parse_shared(&fields);
        if all.is_empty() {
            return Ok(());
        }
        let entries = shared_entries(&all);
        if let Err(e) = self.write(s, all).await {
            // Given back for the next round (the failed write kept them here, too: take them).
            self.take();
            redis.usage_add(&entries).await;
            return Err(e);
        }
        Ok(())
    }

    /// One transaction adding `usage` to the keys' rows; on failure it is kept for next time.
    async fn write(&self, s: &Services, usage: Vec<(ApiKeyId, Usage)>) -> anyhow::Result<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let written = async {
            let scope = SystemScope::new("api_key.usage");
            let mut uow = UnitOfWork::system(s, SystemActor::Maintenance, scope).await?;
            for (id, u) in &usage {
                let ip = u.last_ip.map(|i| i.to_string());
                api_keys::add_usage(uow.tx(), *id, u.requests, u.last_used_at, ip.as_deref())
                    .await?;
            }
            uow.commit().await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if written.is_err() {
            for (id, u) in usage {
                self.add(id, u);
            }
        }
        written
    }
}

/// Usage as the Redis script takes it: id, requests, last use in µs, last address or empty.
fn shared_entries(usage: &[(ApiKeyId, Usage)]) -> Vec<(String, i64, i64, String)> {
    usage
        .iter()
        .map(|(id, u)| {
            let at = i64::try_from(u.last_used_at.unix_timestamp_nanos() / 1000).unwrap_or(0);
            let ip = u.last_ip.map(|i| i.to_string()).unwrap_or_default();
            (id.to_string(), u.requests, at, ip)
        })
        .collect()
}

/// The shared hash's fields (`<id>:n`, `<id>:at`, `<id>:ip`) back into usage; a field that
/// does not parse (nothing Palisade writes) is skipped.
fn parse_shared(fields: &[(String, String)]) -> Vec<(ApiKeyId, Usage)> {
    let mut out: std::collections::HashMap<ApiKeyId, Usage> = std::collections::HashMap::new();
    for (field, value) in fields {
        let Some((id, what)) = field.rsplit_once(':') else {
            continue;
        };
        let Ok(id) = id.parse::<uuid::Uuid>().map(ApiKeyId::from_uuid) else {
            continue;
        };
        let u = out.entry(id).or_insert(Usage {
            requests: 0,
            last_used_at: OffsetDateTime::UNIX_EPOCH,
            last_ip: None,
        });
        match what {
            "n" => u.requests += value.parse::<i64>().unwrap_or(0),
            "at" => {
                if let Some(at) = value
                    .parse::<i128>()
                    .ok()
                    .and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(us * 1000).ok())
                {
                    u.last_used_at = u.last_used_at.max(at);
                }
            }
            "ip" => u.last_ip = value.parse().ok(),
            _ => {}
        }
    }
    out.into_iter().filter(|(_, u)| u.requests > 0).collect()
}

/// Flushes usage every `every` until aborted.
pub fn spawn_usage_flusher(s: Services, every: Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic(
        "flushing API key usage failed; will retry",
        every,
        None,
        move || {
            let s = s.clone();
            async move { s.api_key_usage.flush(&s).await.map(|()| Next::Wait) }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_checksum() {
        for _ in 0..200 {
            let k = generate();
            assert_eq!(k.len(), PREFIX.len() + 49);
            assert!(checksum_ok(&k), "{k}");
        }
        assert_ne!(generate(), generate());
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let k = generate();
        let mut bytes = k.clone().into_bytes();
        let i = PREFIX.len() + 10;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        assert!(!checksum_ok(&String::from_utf8(bytes).unwrap()));
        assert!(!checksum_ok(&k[..k.len() - 1]));
        assert!(!checksum_ok(&k.replace("pal_live_", "pal_test_")));
    }

    #[test]
    fn random_strings_of_the_right_shape_do_not_pass() {
        // The checksum makes a random string of the right shape pass with probability 62^-6.
        let mut passed = 0;
        for _ in 0..100_000 {
            let mut s = String::from(PREFIX);
            let mut buf = [0u8; 49];
            rand::rngs::OsRng.fill_bytes(&mut buf);
            for b in buf {
                s.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
            passed += usize::from(checksum_ok(&s));
        }
        assert_eq!(passed, 0);
    }
}
