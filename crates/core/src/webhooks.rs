//! Outgoing webhooks: endpoints a tenant's admins register, signed per Standard Webhooks, and
//! delivered from a durable queue with retries.
//!
//! # Threats and invariants
//!
//! - SSRF: every URL is parsed with [`safe_http::TargetUrl`] under the policy in force at
//!   creation and again at every delivery, and sent only through [`safe_http::send`] (resolve
//!   once, check every answer, pin, no redirects). The permissive development policy comes only
//!   from `PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS`, which production refuses.
//! - A URL whose host is neither in the platform allowlist nor in the tenant's is created
//!   `pending_approval`; nothing is queued for it until an admin approves it (audited).
//! - An endpoint signs with HMAC-SHA256 (`v1`, default) or Ed25519 (`v1a`), chosen at creation.
//!   HMAC secrets are 32 random bytes (`whsec_` + base64), shown once; Ed25519 private keys are
//!   32-byte seeds (`whsk_` + base64), never shown, and the consumer gets the public key
//!   (`whpk_` + base64), shown at creation and on every read. Both are stored encrypted with
//!   `webhook:<tenant>:<id>` as associated data. Rotation keeps the previous key signing for an
//!   overlap (24 hours by default, at most 7 days, 0 drops it at once).
//! - Events are queued in the transaction of the change that causes them, so a rolled-back
//!   change sends nothing and a committed one is never lost; the queue survives restarts.
//! - Delivery: `webhook-id` is the delivery id (stable across retries), `webhook-timestamp` the
//!   attempt's Unix time, `webhook-signature` `v1,<base64 HMAC-SHA256(secret, id.ts.body)>` or
//!   `v1a,<base64 Ed25519 signature of id.ts.body>` (two entries during a rotation overlap).
//!   Retries back off exponentially with jitter for ~40 h, honour `Retry-After`, and stop on
//!   `410 Gone`, which disables the endpoint. Each endpoint gets at most
//!   `PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE` attempts a minute (60 by default). An endpoint
//!   failing 50 times in a row, or for 24 hours, is disabled with an audit record and a
//!   notification to every admin of the tenant, in the same transaction.
//! - A webhook created (or moved by a URL change) to `pending_approval` notifies the tenant's
//!   other admins in the transaction that creates it.

use crate::audit::{self, AuditEntryExt};
use crate::auth::{Principal, RequestMeta};
use crate::notifications::{self, NewNotification};
use crate::safe_http::{self, HeaderMap, Method, OutboundPolicy, TargetHost, TargetUrl};
use crate::worker::Next;
use crate::{AppError, AppResult, Services};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_domain::rfc3339;
use palisade_domain::{FieldError, Permission, TenantId, UserId};
use palisade_store::webhooks::{self as store, Attempt, Delivery, Webhook, WebhookStatus};
use palisade_store::{audit as audit_log, Scope, SystemScope, Tx};
use rand::{Rng, RngCore};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Prefix of symmetric secrets (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of Ed25519 private keys (Standard Webhooks); never leaves the server.
pub const PRIVATE_KEY_PREFIX: &str = "whsk_";
/// Prefix of Ed25519 public keys (Standard Webhooks), given to the consumer.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Every event type Palisade emits (docs/webhooks.md has payload examples).
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "api_key.created",
    "api_key.revoked",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "webhook.test",
];
/// Delay before retry n (after the n-th failed attempt), before jitter: ~40 h in all.
pub const RETRY_SCHEDULE_SECS: &[i64] = &[
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800,
];
/// How long the previous secret keeps signing after a rotation, by default.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(7);
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

// ---- pure helpers ----

/// The outbound policy for webhook traffic.
pub fn policy(s: &Services) -> OutboundPolicy {
    let mut p = if s.settings.webhooks_allow_private_targets {
        OutboundPolicy::development()
    } else {
        OutboundPolicy::strict()
    };
    p.max_response_bytes = RESPONSE_LOG_BYTES;
    p
}

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// How an endpoint signs (fixed at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256 with a `whsec_` secret: `v1,…`.
    HmacSha256,
    /// Ed25519 with a `whsk_` private key: `v1a,…`.
    Ed25519,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::HmacSha256 => "hmac_sha256",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }
    /// `hmac_sha256` (also spelled `hmac-sha256`) or `ed25519`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hmac_sha256" | "hmac-sha256" => Some(SignatureAlgorithm::HmacSha256),
            "ed25519" => Some(SignatureAlgorithm::Ed25519),
            _ => None,
        }
    }
}

/// A fresh Ed25519 key pair: (`whsk_…` private key, `whpk_…` public key).
pub fn generate_ed25519() -> AppResult<(String, String)> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| anyhow::anyhow!("ed25519 key: {e}"))?;
    use ring::signature::KeyPair;
    Ok((
        format!("{PRIVATE_KEY_PREFIX}{}", STANDARD.encode(seed)),
        format!(
            "{PUBLIC_KEY_PREFIX}{}",
            STANDARD.encode(pair.public_key().as_ref())
        ),
    ))
}

/// One key an endpoint signs with, decrypted for one attempt.
pub enum SigningKey {
    Hmac(Vec<u8>),
    Ed25519(ring::signature::Ed25519KeyPair),
}

impl SigningKey {
    /// Parses a stored `whsec_…` or `whsk_…` key.
    pub fn parse(alg: SignatureAlgorithm, key: &str) -> Option<SigningKey> {
        match alg {
            SignatureAlgorithm::HmacSha256 => secret_bytes(key).map(SigningKey::Hmac),
            SignatureAlgorithm::Ed25519 => {
                let seed = STANDARD
                    .decode(key.strip_prefix(PRIVATE_KEY_PREFIX)?)
                    .ok()?;
                ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                    .ok()
                    .map(SigningKey::Ed25519)
            }
        }
    }

    /// `v1,<sig>` or `v1a,<sig>` over `{id}.{timestamp}.{body}`.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            SigningKey::Hmac(k) => format!("v1,{}", sign(k, msg_id, timestamp, body)),
            SigningKey::Ed25519(pair) => {
                let mut msg = Vec::with_capacity(msg_id.len() + body.len() + 24);
                msg.extend_from_slice(msg_id.as_bytes());
                msg.push(b'.');
                msg.extend_from_slice(timestamp.to_string().as_bytes());
                msg.push(b'.');
                msg.extend_from_slice(body);
                format!("v1a,{}", STANDARD.encode(pair.sign(&msg).as_ref()))
            }
        }
    }
}

/// `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key) else {
        return String::new(); // unreachable: HMAC takes keys of any length
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `webhook-signature` value: one `v1,<sig>` / `v1a,<sig>` per key, space-separated.
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.signature(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a subscription (`user.created`, `user.*`, `*`) covers `event`.
pub fn subscription_matches(subscription: &str, event: &str) -> bool {
    if subscription == "*" || subscription == event {
        return true;
    }
    match subscription.strip_suffix(".*") {
        Some(prefix) => event
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => false,
    }
}

/// What a subscriber must be allowed to read to receive events of `event_type`; `None` when
/// the event carries no tenant data (`webhook.test`). A family not listed here is for
/// signed-in admins only until it is mapped (fail closed: no key gets events nobody reviewed).
fn event_permission(event_type: &str) -> Option<Permission> {
    let family = event_type.split('.').next().unwrap_or(event_type);
    match family {
        "webhook" => None,
        "contact" => Some(Permission::ContactsRead),
        "conversation" | "message" => Some(Permission::ConversationsRead),
        "user" => Some(Permission::UsersRead),
        "api_key" => Some(Permission::ApiKeysManage),
        _ => Some(Permission::WebhooksApprove),
    }
}

/// A webhook carries the data of its events to whoever holds its URL and secret, so whoever
/// subscribes it (or redirects it, rotates its secret, reads or replays its deliveries) must be
/// allowed to read that data: `contact.*` needs `contacts.read` (a key: `contacts:read`),
/// `conversation.*` / `message.*` `conversations.read`, and `user.*` / `api_key.*` (hence `*`)
/// are never for API keys (`403 api_key_not_allowed`: no scope grants them). Admins may
/// subscribe to everything.
fn require_event_access(p: &Principal, subscriptions: &[String]) -> AppResult<()> {
    let mut missing_scope = None;
    for event in EVENT_TYPES
        .iter()
        .filter(|t| subscriptions.iter().any(|sub| subscription_matches(sub, t)))
    {
        let Some(permission) = event_permission(event) else {
            continue;
        };
        match p.require(permission) {
            Ok(()) => {}
            Err(AppError::Forbidden { code, message }) => {
                let e = AppError::Forbidden {
                    code,
                    message: format!("{message} (to receive {event} events)"),
                };
                // No scope can fix a refusal outright; say that first.
                if code != "insufficient_scope" {
                    return Err(e);
                }
                missing_scope.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    missing_scope.map_or(Ok(()), Err)
}

fn parse_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    if events.is_empty() {
        return Err(FieldError::new(
            "events",
            "must name at least one event type, a prefix like user.*, or *",
        ));
    }
    let unknown: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| !EVENT_TYPES.iter().any(|t| subscription_matches(e, t)))
        .collect();
    if !unknown.is_empty() {
        return Err(FieldError::new(
            "events",
            format!(
                "unknown event type(s): {}; known: {}",
                unknown.join(", "),
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let mut out = events.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse_description(d: &str) -> Result<Option<String>, FieldError> {
    let d = d.trim();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(FieldError::new(
            "description",
            "must be at most 500 characters without control characters",
        ));
    }
    Ok((!d.is_empty()).then(|| d.to_owned()))
}

/// Parses a URL under the webhook policy; the error names the rule, for the tenant.
pub fn parse_url(s: &Services, url: &str) -> Result<TargetUrl, FieldError> {
    TargetUrl::parse(url.trim(), &policy(s))
        .map_err(|e| FieldError::new("url", format!("is not allowed: {e}")))
}

fn host_text(t: &TargetUrl) -> String {
    match t.host() {
        TargetHost::Domain(d) => d.clone(),
        TargetHost::Ip(ip) => ip.to_string(),
    }
}

/// Whether `host` is `entry` or a subdomain of it.
fn host_allowed(host: &str, list: &[String]) -> bool {
    list.iter().any(|e| {
        let e = e.trim().trim_end_matches('.').to_ascii_lowercase();
        !e.is_empty()
            && (host == e
                || host
                    .strip_suffix(e.as_str())
                    .is_some_and(|r| r.ends_with('.')))
    })
}

fn parse_domains(domains: &[String]) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for d in domains {
        let t = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !t.is_empty()
            && t.len() <= 253
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !ok {
            return Err(FieldError::new(
                "allowed_domains",
                format!("{d:?} is not a host name"),
            ));
        }
        out.push(t);
    }
    if out.len() > 50 {
        return Err(FieldError::new("allowed_domains", "at most 50 entries"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn aad(tenant: TenantId, id: Uuid) -> Vec<u8> {
    format!("webhook:{tenant}:{id}").into_bytes()
}

fn audit_json(w: &Webhook) -> Value {
    json!({
        "id": w.id, "url": safe_http::redact_url(&w.url), "description": w.description, "events": w.events,
        "status": w.status.as_str(),
    })
}

/// The JSON body of an event, as delivered: `{type, timestamp, data}`.
pub fn event_payload(event_type: &str, data: Value, now: OffsetDateTime) -> Value {
    json!({ "type": event_type, "timestamp": rfc3339(now), "data": data })
}

/// Queues `event_type` for every active endpoint of `tenant` subscribed to it, in the caller's
/// transaction (so it commits or rolls back with the change). Returns how many were queued.
pub async fn enqueue<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    event_type: &str,
    data: Value,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let hooks = subscribers(tx, tenant, event_type).await?;
    enqueue_to(tx, tenant, &hooks, event_type, vec![data], now).await
}

/// The tenant's active endpoints that subscribe to `event_type` (for [`enqueue_to`]: a caller
/// with many events of one type, or with data that costs a read, asks once).
pub async fn subscribers<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    event_type: &str,
) -> AppResult<Vec<Webhook>> {
    let mut hooks = store::list_active(tx, tenant).await?;
    hooks.retain(|w| w.events.iter().any(|e| subscription_matches(e, event_type)));
    Ok(hooks)
}

/// Queues one delivery of each event (`data`, in order) to each of `hooks` (from
/// [`subscribers`]), in the caller's transaction. Returns the deliveries queued.
pub async fn enqueue_to<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    hooks: &[Webhook],
    event_type: &str,
    data: Vec<Value>,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let mut n = 0;
    for data in data {
        let payload = event_payload(event_type, data, now);
        for w in hooks {
            store::insert_delivery(tx, tenant, w.id, Uuid::now_v7(), event_type, &payload, now)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

// ---- use cases ----

pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// `hmac_sha256` (default; `hmac-sha256` is accepted too) or `ed25519`.
    pub signature_algorithm: Option<String>,
}

/// A fresh signing key for `alg`: (what is stored encrypted, what the consumer gets, the
/// public key to store in clear).
fn new_signing_key(alg: SignatureAlgorithm) -> AppResult<(String, String, Option<String>)> {
    Ok(match alg {
        SignatureAlgorithm::HmacSha256 => {
            let secret = generate_secret();
            (secret.clone(), secret, None)
        }
        SignatureAlgorithm::Ed25519 => {
            let (private, public) = generate_ed25519()?;
            (private, public.clone(), Some(public))
        }
    })
}

/// Tells the tenant's other admins that `w` waits for approval (in the caller's transaction).
async fn notify_pending<S: Scope>(
    tx: &mut Tx<S>,
    w: &Webhook,
    actor: UserId,
    now: OffsetDateTime,
) -> AppResult<()> {
    let recipients = notifications::tenant_admins(tx, w.tenant_id, Some(actor)).await?;
    notifications::notify(
        tx,
        w.tenant_id,
        &recipients,
        &NewNotification {
            kind: "webhook.pending_approval",
            title: "A webhook waits for approval".into(),
            body: format!(
                "A webhook to {} is outside the allowed domains; nothing is sent to it until an \
                 admin approves it.",
                safe_http::redact_url(&w.url)
            ),
            data: json!({ "webhook_id": w.id, "url": safe_http::redact_url(&w.url), "requested_by": w.created_by }),
            target: Some(("webhook", w.id)),
        },
        now,
    )
    .await?;
    Ok(())
}

pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `active` or `disabled` (re-enabling a disabled endpoint, or pausing one).
    pub status: Option<String>,
}

async fn is_allowlisted<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    tenant: TenantId,
    target: &TargetUrl,
) -> AppResult<bool> {
    let host = host_text(target);
    if host_allowed(&host, &s.settings.webhooks_allowed_domains) {
        return Ok(true);
    }
    let tenant_list = store::allowed_domains(tx, tenant).await?;
    Ok(host_allowed(&host, &tenant_list))
}

/// Creates an endpoint; returns it and its secret, which is never shown again.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewWebhook,
) -> AppResult<(Webhook, String)> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut errors = Vec::new();
    let target = parse_url(s, &input.url).map_err(|e| errors.push(e)).ok();
    let events = parse_events(&input.events).map_err(|e| errors.push(e)).ok();
    let description = input
        .description
        .as_deref()
        .map(parse_description)
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten()
        .flatten();
    let algorithm = match input.signature_algorithm.as_deref() {
        None => Some(SignatureAlgorithm::HmacSha256),
        Some(a) => SignatureAlgorithm::parse(a).or_else(|| {
            errors.push(FieldError::new(
                "signature_algorithm",
                "must be hmac_sha256 (Standard Webhooks v1) or ed25519 (v1a)",
            ));
            None
        }),
    };
    let (Some(target), Some(events), Some(algorithm)) = (target, events, algorithm) else {
        return Err(AppError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    require_event_access(p, &events)?;
    let mut tx = s.store.begin(scope).await?;
    let max = i64::try_from(s.settings.webhooks_max_per_tenant).unwrap_or(i64::MAX);
    // Concurrent creates wait here for each other, so each counts the ones committed before it.
    palisade_store::tenants::lock(&mut tx).await?;
    if store::count(&mut tx).await? >= max {
        return Err(AppError::conflict(
            "webhook_limit_reached",
            format!("a tenant can have at most {max} webhooks; delete one first"),
        ));
    }
    let allowlisted = is_allowlisted(s, &mut tx, scope.tenant_id(), &target).await?;
    let id = Uuid::now_v7();
    let (stored, secret, public_key) = new_signing_key(algorithm)?;
    let ciphertext = s
        .keys
        .encryption
        .encrypt(stored.as_bytes(), &aad(scope.tenant_id(), id))?;
    let w = Webhook {
        id,
        tenant_id: scope.tenant_id(),
        url: target.as_str().to_owned(),
        description,
        events,
        status: if allowlisted {
            WebhookStatus::Active
        } else {
            WebhookStatus::PendingApproval
        },
        secret_ciphertext: ciphertext,
        previous_secret_ciphertext: None,
        previous_secret_expires_at: None,
        signature_algorithm: algorithm.as_str().into(),
        public_key,
        created_by: p.user_id,
        approved_by: None,
        approved_at: allowlisted.then_some(now),
        disabled_reason: None,
        consecutive_failures: 0,
        failing_since: None,
        last_success_at: None,
        last_failure_at: None,
        created_at: now,
        updated_at: now,
    };
    store::insert(&mut tx, &w).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.created")
            .target("webhook", w.id)
            .change(None, Some(audit_json(&w)))
            .metadata(json!({ "allowlisted": allowlisted })),
        now,
    )
    .await?;
    if !allowlisted {
        notify_pending(&mut tx, &w, p.user_id, now).await?;
    }
    tx.commit().await?;
    Ok((w, secret))
}

pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<Webhook>> {
    p.require(Permission::WebhooksRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(store::list(&mut tx).await?)
}

pub async fn get(s: &Services, p: &Principal, id: Uuid) -> AppResult<Webhook> {
    p.require(Permission::WebhooksRead)?;
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    store::find(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
    changes: WebhookChanges,
) -> AppResult<Webhook> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut errors = Vec::new();
    let target = changes
        .url
        .as_deref()
        .map(|u| parse_url(s, u))
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let events = changes
        .events
        .as_deref()
        .map(parse_events)
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let description = changes
        .description
        .as_deref()
        .map(parse_description)
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let status = match changes.status.as_deref() {
        None => None,
        Some("active") => Some(WebhookStatus::Active),
        Some("disabled") => Some(WebhookStatus::Disabled),
        Some(_) => {
            errors.push(FieldError::new(
                "status",
                "must be active or disabled (approve pending webhooks with POST …/approve)",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut tx = s.store.begin(scope).await?;
    let before = store::find_for_update(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    let mut after = before.clone();
    if let Some(e) = events {
        after.events = e;
    }
    if let Some(d) = description {
        after.description = d;
    }
    match status {
        Some(WebhookStatus::Active) if before.status == WebhookStatus::PendingApproval => {
            return Err(AppError::conflict(
                "approval_required",
                "this webhook awaits approval; use POST /api/v1/webhooks/{id}/approve",
            ));
        }
        Some(WebhookStatus::Active) => {
            after.status = WebhookStatus::Active;
            after.disabled_reason = None;
            after.consecutive_failures = 0;
            after.failing_since = None;
        }
        Some(st) => {
            after.status = st;
            after.disabled_reason = Some("disabled by an admin".into());
        }
        None => {}
    }
    // New events, or the same events sent somewhere else, are a new subscription.
    if changes.events.is_some() || target.as_ref().is_some_and(|t| t.as_str() != before.url) {
        require_event_access(p, &after.events)?;
    }
    if let Some(t) = target {
        if t.as_str() != before.url {
            after.url = t.as_str().to_owned();
            if !is_allowlisted(s, &mut tx, scope.tenant_id(), &t).await? {
                // A new destination needs approval again.
                after.status = WebhookStatus::PendingApproval;
                after.approved_by = None;
                after.approved_at = None;
                notify_pending(&mut tx, &after, p.user_id, now).await?;
            }
        }
    }
    after.updated_at = now;
    store::update(&mut tx, &after).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.updated")
            .target("webhook", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after))),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub async fn delete(s: &Services, p: &Principal, meta: &RequestMeta, id: Uuid) -> AppResult<()> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut tx = s.store.begin(scope).await?;
    let before = store::find(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    store::delete(&mut tx, id).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.deleted")
            .target("webhook", id)
            .change(Some(audit_json(&before)), None),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Approves a pending endpoint (any admin); records who approved it.
pub async fn approve(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
) -> AppResult<Webhook> {
    p.require(Permission::WebhooksApprove)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut tx = s.store.begin(scope).await?;
    let before = store::find_for_update(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    if before.status != WebhookStatus::PendingApproval {
        return Err(AppError::conflict(
            "not_pending_approval",
            format!(
                "this webhook is {}, not pending approval",
                before.status.as_str()
            ),
        ));
    }
    let mut after = before.clone();
    after.status = WebhookStatus::Active;
    after.approved_by = Some(p.user_id);
    after.approved_at = Some(now);
    after.updated_at = now;
    store::update(&mut tx, &after).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.approved")
            .target("webhook", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after)))
            .metadata(json!({ "url": safe_http::redact_url(&after.url) })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A new secret or key pair (the secret / public key is returned). The previous key keeps
/// signing for `overlap_seconds` (default 24 hours, at most 7 days; 0 drops it at once, as
/// does `expire_previous_now`).
pub async fn rotate_secret(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
    expire_previous_now: bool,
    overlap_seconds: Option<i64>,
) -> AppResult<(Webhook, String)> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let overlap = match overlap_seconds {
        None => ROTATION_OVERLAP,
        Some(n) if (0..=MAX_ROTATION_OVERLAP.whole_seconds()).contains(&n) => Duration::seconds(n),
        Some(_) => {
            return Err(AppError::field(
                "overlap_seconds",
                format!(
                    "must be between 0 and {} (7 days)",
                    MAX_ROTATION_OVERLAP.whole_seconds()
                ),
            ))
        }
    };
    if expire_previous_now && overlap_seconds.is_some_and(|n| n > 0) {
        return Err(AppError::field(
            "overlap_seconds",
            "contradicts expire_previous_now: true (send one of them)",
        ));
    }
    let expire_previous_now = expire_previous_now || overlap == Duration::ZERO;
    let mut tx = s.store.begin(scope).await?;
    let before = store::find_for_update(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    require_event_access(p, &before.events)?;
    let algorithm = SignatureAlgorithm::parse(&before.signature_algorithm)
        .ok_or_else(|| anyhow::anyhow!("unknown signature algorithm"))?;
    let (stored, secret, public_key) = new_signing_key(algorithm)?;
    let mut after = before.clone();
    after.public_key = public_key;
    after.secret_ciphertext = s
        .keys
        .encryption
        .encrypt(stored.as_bytes(), &aad(scope.tenant_id(), id))?;
    if expire_previous_now {
        after.previous_secret_ciphertext = None;
        after.previous_secret_expires_at = None;
    } else {
        after.previous_secret_ciphertext = Some(before.secret_ciphertext.clone());
        after.previous_secret_expires_at = Some(now + overlap);
    }
    after.updated_at = now;
    store::update(&mut tx, &after).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.secret_rotated")
            .target("webhook", id)
            .metadata(json!({
                "expire_previous_now": expire_previous_now,
                "signature_algorithm": after.signature_algorithm,
                "previous_valid_until": after.previous_secret_expires_at.map(rfc3339),
            })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((after, secret))
}

/// Queues a `webhook.test` event for this endpoint only.
pub async fn send_test(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
) -> AppResult<Delivery> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut tx = s.store.begin(scope).await?;
    let w = store::find(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    if w.status != WebhookStatus::Active {
        return Err(AppError::conflict(
            "webhook_not_active",
            format!(
                "this webhook is {}; only active webhooks receive events",
                w.status.as_str()
            ),
        ));
    }
    let payload = event_payload(
        "webhook.test",
        json!({ "webhook_id": id, "message": "This is a test event from Palisade." }),
        now,
    );
    let delivery_id = Uuid::now_v7();
    store::insert_delivery(
        &mut tx,
        scope.tenant_id(),
        id,
        delivery_id,
        "webhook.test",
        &payload,
        now,
    )
    .await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.test_sent")
            .target("webhook", id)
            .metadata(json!({ "delivery_id": delivery_id })),
        now,
    )
    .await?;
    let d = store::find_delivery(&mut tx, scope.tenant_id(), id, delivery_id)
        .await?
        .ok_or(AppError::NotFound("delivery"))?;
    tx.commit().await?;
    Ok(d)
}

pub async fn list_deliveries(
    s: &Services,
    p: &Principal,
    id: Uuid,
    limit: Option<i64>,
) -> AppResult<Vec<Delivery>> {
    p.require(Permission::WebhooksRead)?;
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    let w = store::find(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    // Deliveries carry the events' data.
    require_event_access(p, &w.events)?;
    Ok(store::list_deliveries(&mut tx, id, limit.unwrap_or(100).clamp(1, 500)).await?)
}

/// Schedules a delivery for an immediate new attempt.
pub async fn retry_delivery(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
    delivery_id: Uuid,
) -> AppResult<Delivery> {
    p.require(Permission::WebhooksManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut tx = s.store.begin(scope).await?;
    let w = store::find(&mut tx, scope.tenant_id(), id)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    require_event_access(p, &w.events)?;
    store::find_delivery(&mut tx, scope.tenant_id(), id, delivery_id)
        .await?
        .ok_or(AppError::NotFound("delivery"))?;
    store::requeue_delivery(&mut tx, delivery_id, now).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.delivery_retried")
            .target("webhook", id)
            .metadata(json!({ "delivery_id": delivery_id })),
        now,
    )
    .await?;
    let d = store::find_delivery(&mut tx, scope.tenant_id(), id, delivery_id)
        .await?
        .ok_or(AppError::NotFound("delivery"))?;
    tx.commit().await?;
    Ok(d)
}

pub async fn allowed_domains(s: &Services, p: &Principal) -> AppResult<Vec<String>> {
    p.require(Permission::WebhooksRead)?;
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    Ok(store::allowed_domains(&mut tx, scope.tenant_id()).await?)
}

pub async fn set_allowed_domains(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    domains: &[String],
) -> AppResult<Vec<String>> {
    // Allowed domains skip approval: only a signed-in admin decides them, never an API key.
    p.require(Permission::WebhooksApprove)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let domains = parse_domains(domains)?;
    let mut tx = s.store.begin(scope).await?;
    let before = store::allowed_domains(&mut tx, scope.tenant_id()).await?;
    store::set_allowed_domains(&mut tx, &domains, p.user_id, now).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "webhook.allowed_domains_changed")
            .target("tenant", scope.tenant_id())
            .change(
                Some(json!({ "allowed_domains": before })),
                Some(json!({ "allowed_domains": domains })),
            ),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(domains)
}

// ---- the worker ----

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
    let now = s.now();
    let per_minute = i64::from(s.settings.webhooks_deliveries_per_minute);
    let mut tx = s.store.begin(SystemScope::new("webhooks.deliver")).await?;
    let claimed = store::claim_due(&mut tx, now, now + LEASE, CLAIM_BATCH_I64).await?;
    let n_claimed = claimed.len();
    let mut by_hook: BTreeMap<Uuid, Vec<Delivery>> = BTreeMap::new();
    for d in claimed {
        by_hook.entry(d.webhook_id).or_default().push(d);
    }
    for (hook, list) in by_hook.iter_mut() {
        // Ids are UUID v7: an endpoint's deliveries go out in the order their events happened
        // (RETURNING does not promise the claim's order).
        list.sort_by_key(|d| d.id);
        let used = store::attempts_since(&mut tx, *hook, now - Duration::minutes(1)).await?;
        let budget = usize::try_from((per_minute - used).max(0)).unwrap_or(0);
        if list.len() > budget {
            for d in list.split_off(budget) {
                store::defer(&mut tx, d.id, now + RATE_LIMIT_DEFER).await?;
            }
        }
    }
    tx.commit().await?;
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
    let tenant = TenantId::from(first.tenant_id);
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

async fn load_endpoint(s: &Services, tenant: TenantId, id: Uuid) -> AppResult<Option<Endpoint>> {
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
    let tenant = TenantId::from(d.tenant_id);
    let body = serde_json::to_vec(&d.payload.0).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let attempt_no = d.attempts + 1;
    let mut tx = s.store.begin(SystemScope::new("webhooks.deliver")).await?;
    // Re-read the endpoint, locked: its counters (or status, or secret) may have moved while we
    // were sending, and an admin or another node may be writing it right now.
    let Some(mut w) = store::find_for_update(&mut tx, tenant, e.webhook.id).await? else {
        return Ok(false);
    };
    let mut disable: Option<String> = None;
    match outcome {
        Outcome::Delivered => {
            store::record_attempt(&mut tx, &d, &rec, "delivered", now).await?;
            w.consecutive_failures = 0;
            w.failing_since = None;
            w.last_success_at = Some(now);
        }
        Outcome::Gone => {
            store::record_attempt(&mut tx, &d, &rec, "dead", now).await?;
            w.last_failure_at = Some(now);
            disable = Some("the endpoint answered 410 Gone".into());
        }
        Outcome::Failed { retry_after } => {
            match backoff(attempt_no, retry_after) {
                Some(delay) => {
                    store::record_attempt(&mut tx, &d, &rec, "failed", now + delay).await?
                }
                None => store::record_attempt(&mut tx, &d, &rec, "dead", now).await?,
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
    store::update(&mut tx, &w).await?;
    if let Some(reason) = disable {
        let meta = RequestMeta {
            request_id: "webhook-worker".into(),
            ..RequestMeta::default()
        };
        audit_log::append(
            &mut tx,
            &audit::entry(&meta, Some(tenant), "webhook.disabled")
                .target("webhook", w.id)
                .metadata(json!({ "reason": reason, "delivery_id": d.id })),
            now,
        )
        .await?;
        let admins = notifications::tenant_admins(&mut tx, tenant, None).await?;
        notifications::notify(
            &mut tx,
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
                target: Some(("webhook", w.id)),
            },
            now,
        )
        .await?;
        tracing::warn!(webhook = %w.id, tenant = %tenant, %reason, "webhook endpoint disabled");
    }
    tx.commit().await?;
    Ok(w.status == WebhookStatus::Active)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_exactly_by_prefix_or_all() {
        assert!(subscription_matches("user.created", "user.created"));
        assert!(subscription_matches("user.*", "user.deleted"));
        assert!(subscription_matches("*", "api_key.revoked"));
        assert!(!subscription_matches("user.*", "users.created"));
        assert!(!subscription_matches("user.created", "user.updated"));
        assert!(!subscription_matches("user", "user.created"));
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let key = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_default();
        let sig = signature_header(
            &[SigningKey::Hmac(key)],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn ed25519_keys_sign_v1a_that_the_public_key_verifies() {
        let (private, public) = generate_ed25519().unwrap();
        assert!(private.starts_with("whsk_") && public.starts_with("whpk_"));
        let key = SigningKey::parse(SignatureAlgorithm::Ed25519, &private).unwrap();
        let header = signature_header(&[key], "msg_1", 1_614_265_330, b"{}");
        let sig = STANDARD
            .decode(header.strip_prefix("v1a,").unwrap())
            .unwrap();
        let pk = STANDARD
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap();
        assert_eq!(pk.len(), 32);
        let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &pk);
        assert!(verifier.verify(b"msg_1.1614265330.{}", &sig).is_ok());
        assert!(verifier.verify(b"msg_1.1614265330.{ }", &sig).is_err());
        assert!(SigningKey::parse(SignatureAlgorithm::Ed25519, "whsec_AAAA").is_none());
    }

    #[test]
    fn secrets_are_32_random_bytes_with_the_prefix() {
        let a = generate_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_bytes(&a).map(|b| b.len()), Some(32));
        assert_ne!(a, generate_secret());
    }

    #[test]
    fn allowlists_match_hosts_and_subdomains_only() {
        let list = vec!["hooks.example.com".to_owned()];
        assert!(host_allowed("hooks.example.com", &list));
        assert!(host_allowed("a.hooks.example.com", &list));
        assert!(!host_allowed("evilhooks.example.com", &list));
        assert!(!host_allowed("example.com", &list));
    }

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
