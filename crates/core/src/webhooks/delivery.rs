//! The delivery worker: claims due deliveries under a system scope, sends each endpoint's in
//! order (endpoints in parallel, within a per-minute budget), signs every attempt, records the
//! outcome, backs off, and disables an endpoint that keeps failing (audited, admins notified).
//! Its writes are units of work of [`SystemActor::WebhookWorker`] (audit request id
//! `webhook-worker`). Separate because it is the only part that runs in the background and talks
//! to receivers.

use super::signing::{aad, signature_header, SignatureAlgorithm, SigningKey};
use super::targets::policy;
use crate::audit::AuditEntryExt;
use crate::notifications::{self, NewNotification};
use crate::safe_http::{self, HeaderMap, Method, TargetUrl};
use crate::worker::Next;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{TenantId, WebhookId};
use palisade_store::webhooks::{
    self as store, Attempt, Delivery, DeliveryStatus, Webhook, WebhookStatus,
};
use palisade_store::SystemScope;
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use time::Duration;

/// Delay before retry n (after the n-th failed attempt), before jitter: ~40 h in all.
pub const RETRY_SCHEDULE_SECS: &[i64] = &[
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800,
];

/// Consecutive failed attempts that disable an endpoint.
pub const DISABLE_AFTER_FAILURES: i64 = 50;
/// An endpoint failing every attempt for this long is disabled.
pub const DISABLE_AFTER_FAILING_FOR: Duration = Duration::hours(24);
/// Bytes of a response body kept in the delivery log.
pub const RESPONSE_LOG_BYTES: usize = 1024;
/// A claimed delivery is retried after this if its worker dies mid-attempt.
const LEASE: Duration = Duration::minutes(2);
/// Deliveries claimed per round (a full round is followed by another at once).
const CLAIM_BATCH: usize = 500;
const CLAIM_BATCH_I64: i64 = 500;
/// Endpoints a node sends to at once (each endpoint's deliveries go one at a time, in order).
pub const MAX_PARALLEL_ENDPOINTS: usize = 32;
/// A delivery over its endpoint's per-minute budget waits this long before it is claimed again.
const RATE_LIMIT_DEFER: Duration = Duration::seconds(10);

/// Runs [`deliver_due`] every `every` until aborted; a round that claimed a full batch is
/// followed by another at once, so a backlog drains at the speed of the receivers.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic("webhook delivery round failed", every, None, move || {
        let s = s.clone();
        async move {
            let r = round(&s).await?;
            Ok::<_, crate::AppError>(if r.claimed >= CLAIM_BATCH {
                Next::Again
            } else {
                Next::Wait
            })
        }
    })
}

/// One delivery round: claims due deliveries of active endpoints (within each endpoint's
/// per-minute budget), sends them — endpoints in parallel, at most [`MAX_PARALLEL_ENDPOINTS`]
/// at once, each endpoint's in order — and records the outcomes. Returns the number of
/// attempts made.
pub async fn deliver_due(s: &Services) -> AppResult<usize> {
    Ok(round(s).await?.attempts)
}

struct Round {
    claimed: usize,
    attempts: usize,
}

async fn round(s: &Services) -> AppResult<Round> {
    let per_minute = i64::from(s.settings.webhooks_deliveries_per_minute);
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::WebhookWorker,
        SystemScope::new("webhooks.deliver"),
    )
    .await?;
    let now = uow.now();
    let tx = uow.tx();
    let claimed = store::claim_due(tx, now, now + LEASE, CLAIM_BATCH_I64).await?;
    let n_claimed = claimed.len();
    let mut by_hook: BTreeMap<WebhookId, Vec<Delivery>> = BTreeMap::new();
    for d in claimed {
        by_hook.entry(d.webhook_id).or_default().push(d);
    }
    for (hook, list) in by_hook.iter_mut() {
        // Ids are UUID v7: an endpoint's deliveries go out in the order their events happened
        // (RETURNING does not promise the claim's order).
        list.sort_by_key(|d| d.id);
        let used = store::attempts_since(tx, *hook, now - Duration::minutes(1)).await?;
        let budget = usize::try_from((per_minute - used).max(0)).unwrap_or(0);
        if list.len() > budget {
            for d in list.split_off(budget) {
                store::defer(tx, d.id, now + RATE_LIMIT_DEFER).await?;
            }
        }
    }
    uow.commit().await?;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_PARALLEL_ENDPOINTS));
    let mut set = tokio::task::JoinSet::new();
    for (_, list) in by_hook {
        if list.is_empty() {
            continue;
        }
        let s = s.clone();
        let gate = gate.clone();
        set.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return 0;
            };
            deliver_to_endpoint(&s, list).await
        });
    }
    let mut attempts = 0;
    while let Some(r) = set.join_next().await {
        attempts += r.unwrap_or(0);
    }
    Ok(Round {
        claimed: n_claimed,
        attempts,
    })
}

/// Sends one endpoint's claimed deliveries in order; stops when the endpoint is no longer
/// active (disabled by a failure, or by an admin meanwhile). Returns the attempts made.
async fn deliver_to_endpoint(s: &Services, list: Vec<Delivery>) -> usize {
    let Some(first) = list.first() else {
        return 0;
    };
    let tenant = first.tenant_id;
    let hook = first.webhook_id;
    let loaded = match load_endpoint(s, tenant, hook).await {
        Ok(Some(e)) => e,
        Ok(None) => return 0,
        Err(e) => {
            tracing::warn!(error = %e, webhook = %hook, "webhook endpoint could not be loaded");
            return 0;
        }
    };
    let mut n = 0usize;
    for d in list {
        match attempt(s, &loaded, d).await {
            Ok(still_active) => {
                n += 1;
                if !still_active {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery failed to record");
                break;
            }
        }
    }
    n
}

/// An active endpoint with its signing keys decrypted (the previous one while it overlaps) and,
/// when its URL passes the policy, a client pinned to its checked addresses for this round.
struct Endpoint {
    webhook: Webhook,
    keys: Vec<SigningKey>,
    client: Option<safe_http::PinnedClient>,
}

async fn load_endpoint(
    s: &Services,
    tenant: TenantId,
    id: WebhookId,
) -> AppResult<Option<Endpoint>> {
    let now = s.now();
    let w = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("webhooks.deliver"))
            .await?;
        match store::find(&mut tx, tenant, id).await? {
            Some(w) if w.status == WebhookStatus::Active => w,
            _ => return Ok(None),
        }
    };
    let algorithm = SignatureAlgorithm::parse(&w.signature_algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown signature algorithm"))?;
    let aad = aad(tenant, w.id);
    let mut keys = Vec::new();
    for (ct, valid) in [
        (Some(&w.secret_ciphertext), true),
        (
            w.previous_secret_ciphertext.as_ref(),
            w.previous_secret_expires_at.is_some_and(|e| e > now),
        ),
    ] {
        if let (Some(ct), true) = (ct, valid) {
            let plain = s
                .keys
                .encryption
                .decrypt(ct, &aad)
                .map_err(|e| anyhow::anyhow!("webhook secret: {e}"))?;
            let text = String::from_utf8(plain).map_err(|e| anyhow::anyhow!("{e}"))?;
            keys.push(
                SigningKey::parse(algorithm, &text)
                    .ok_or_else(|| anyhow::anyhow!("bad webhook signing key"))?,
            );
        }
    }
    // The URL is checked (and its name resolved) again for every round; if that fails, each
    // attempt below fails the same way and is recorded.
    let policy = policy(s);
    let client = match TargetUrl::parse(&w.url, &policy) {
        Ok(t) => safe_http::PinnedClient::new(&policy, &t).await.ok(),
        Err(_) => None,
    };
    Ok(Some(Endpoint {
        webhook: w,
        keys,
        client,
    }))
}

enum Outcome {
    Delivered,
    /// 410: the receiver asks us to stop.
    Gone,
    Failed {
        retry_after: Option<i64>,
    },
}

impl Outcome {
    /// The `result` label of `palisade_webhook_deliveries_total`.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::Failed { .. } => "failed",
        }
    }
}

fn retry_after_secs(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
}

fn backoff(attempt: i64, retry_after: Option<i64>) -> Option<Duration> {
    let idx = usize::try_from(attempt - 1).ok()?;
    let base = *RETRY_SCHEDULE_SECS.get(idx)?;
    let jitter = rand::thread_rng().gen_range(0.9..1.1);
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let mut secs = ((base as f64) * jitter).round() as i64;
    if let Some(ra) = retry_after {
        secs = secs.max(ra.min(24 * 3600));
    }
    Some(Duration::seconds(secs.max(1)))
}

/// Sends one delivery and records the result. Returns whether the endpoint is still active.
async fn attempt(s: &Services, e: &Endpoint, d: Delivery) -> AppResult<bool> {
    let now = s.now();
    let tenant = d.tenant_id;
    let body = serde_json::to_vec(&d.payload).map_err(|e| anyhow::anyhow!("{e}"))?;
    let msg_id = d.id.to_string();
    let ts = now.unix_timestamp();
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("content-type", "application/json".into());
    put("webhook-id", msg_id.clone());
    put("webhook-timestamp", ts.to_string());
    put(
        "webhook-signature",
        signature_header(&e.keys, &msg_id, ts, &body),
    );
    let policy = policy(s);
    let started = std::time::Instant::now();
    let result = match (&e.client, TargetUrl::parse(&e.webhook.url, &policy)) {
        (Some(client), Ok(_)) => client.send(Method::POST, headers, body).await,
        (None, Ok(t)) => safe_http::send(&policy, Method::POST, &t, headers, body).await,
        (_, Err(e)) => Err(e),
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (outcome, rec) = match result {
        Ok(r) => {
            let text = String::from_utf8_lossy(&r.body_truncated);
            let snippet: String = text.chars().take(RESPONSE_LOG_BYTES).collect();
            let code = r.status.as_u16();
            let outcome = if r.status.is_success() {
                Outcome::Delivered
            } else if code == 410 {
                Outcome::Gone
            } else {
                Outcome::Failed {
                    retry_after: retry_after_secs(&r.headers),
                }
            };
            let error = (!r.status.is_success()).then(|| format!("HTTP {code}"));
            (
                outcome,
                Attempt {
                    attempted_at: now,
                    status_code: Some(i64::from(code)),
                    error,
                    latency_ms: i64::try_from(r.latency.as_millis()).unwrap_or(latency_ms),
                    response_body: Some(snippet),
                },
            )
        }
        Err(e) => (
            Outcome::Failed { retry_after: None },
            Attempt {
                attempted_at: now,
                status_code: None,
                error: Some(format!("{}: {e}", e.code())),
                latency_ms,
                response_body: None,
            },
        ),
    };
    crate::metrics::webhook_delivery(outcome.label());
    let attempt_no = d.attempts + 1;
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::WebhookWorker,
        SystemScope::new("webhooks.deliver"),
    )
    .await?
    .for_tenant(tenant);
    let tx = uow.tx();
    // Re-read the endpoint, locked: its counters (or status, or secret) may have moved while we
    // were sending, and an admin or another node may be writing it right now.
    let Some(mut w) = store::find_for_update(tx, tenant, e.webhook.id).await? else {
        return Ok(false);
    };
    let mut disable: Option<String> = None;
    match outcome {
        Outcome::Delivered => {
            store::record_attempt(tx, &d, &rec, DeliveryStatus::Delivered, now).await?;
            w.consecutive_failures = 0;
            w.failing_since = None;
            w.last_success_at = Some(now);
        }
        Outcome::Gone => {
            store::record_attempt(tx, &d, &rec, DeliveryStatus::Dead, now).await?;
            w.last_failure_at = Some(now);
            disable = Some("the endpoint answered 410 Gone".into());
        }
        Outcome::Failed { retry_after } => {
            match backoff(attempt_no, retry_after) {
                Some(delay) => {
                    store::record_attempt(tx, &d, &rec, DeliveryStatus::Failed, now + delay).await?
                }
                None => store::record_attempt(tx, &d, &rec, DeliveryStatus::Dead, now).await?,
            }
            w.consecutive_failures += 1;
            let since = *w.failing_since.get_or_insert(now);
            w.last_failure_at = Some(now);
            if w.consecutive_failures >= DISABLE_AFTER_FAILURES {
                disable = Some(format!(
                    "{} consecutive failed deliveries",
                    w.consecutive_failures
                ));
            } else if now - since >= DISABLE_AFTER_FAILING_FOR {
                disable = Some("every delivery failed for 24 hours".into());
            }
        }
    }
    // Only an active endpoint is disabled by the worker (an admin may have paused it).
    let disable = disable.filter(|_| w.status == WebhookStatus::Active);
    if let Some(reason) = &disable {
        w.status = WebhookStatus::Disabled;
        w.disabled_reason = Some(reason.clone());
    }
    w.updated_at = now;
    store::update(tx, &w).await?;
    if let Some(reason) = disable {
        // Audited as the worker: request id `webhook-worker`, the endpoint's tenant.
        let entry = uow
            .entry("webhook.disabled")
            .target("webhook", w.id)
            .metadata(json!({ "reason": reason, "delivery_id": d.id }));
        uow.audit(entry).await?;
        let tx = uow.tx();
        let admins = notifications::tenant_admins(tx, tenant, None).await?;
        notifications::notify(
            tx,
            tenant,
            &admins,
            &NewNotification {
                kind: "webhook.disabled",
                title: "A webhook was disabled".into(),
                body: format!(
                    "Deliveries to {} stopped: {reason}. Fix the receiver, then re-enable the \
                     webhook (PATCH status: active); pending deliveries resume.",
                    safe_http::redact_url(&w.url)
                ),
                data: json!({ "webhook_id": w.id, "url": safe_http::redact_url(&w.url), "reason": reason }),
                target: Some(("webhook", w.id.as_uuid())),
            },
            now,
        )
        .await?;
        tracing::warn!(webhook = %w.id, tenant = %tenant, %reason, "webhook endpoint disabled");
    }
    uow.commit().await?;
    Ok(w.status == WebhookStatus::Active)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_covers_a_day_and_honours_retry_after() {
        let total: i64 = RETRY_SCHEDULE_SECS.iter().sum();
        assert!(total >= 24 * 3600);
        assert!(backoff(1, None).is_some_and(|d| d.whole_seconds() <= 6));
        assert!(backoff(1, Some(120)).is_some_and(|d| d.whole_seconds() == 120));
        let last = i64::try_from(RETRY_SCHEDULE_SECS.len()).unwrap_or(0);
        assert!(backoff(last + 1, None).is_none());
    }
}
