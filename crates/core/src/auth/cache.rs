//! In-memory views that make authentication cheap without weakening revocation.
//!
//! Verifying an Ed25519 JWT costs ~37 µs and loading the user a database round trip; doing both
//! on every request would cap throughput far below what the API needs. So each node keeps:
//! - verified tokens (token → claims), valid until the token's own expiry;
//! - the user and tenant snapshots requests need;
//! - the set of sessions revoked recently: for as long as the longest token lives (access token
//!   TTL or an impersonation's 30 minutes, whichever is longer, plus a minute), so a token cached
//!   before its session was revoked stays refused until it has expired.
//!
//! Invariant: a revocation, user change or tenant change is visible on every node within one
//! second. The node that makes a change applies it locally at once; every change is also written
//! to `auth_changes` in the same transaction, which each node polls every 250 ms
//! ([`spawn_sync`]). With Redis (`PALISADE_REDIS_URL`) the node also publishes the change once
//! it has committed and the others apply it as they hear it ([`spawn_sharing`]), within
//! milliseconds; the database poll stays as the durable path (a node whose subscription was
//! down catches up from it). A snapshot loaded concurrently with a change is discarded rather than cached
//! (the `epoch` check), so a stale value cannot outlive the change that made it stale.
//!
//! Invariant: a revoked session's tokens are refused until they expire, across restarts and on
//! every node. A token this node has not seen yet is checked against the session row in the
//! database before it is cached (once per token per node), so a node that started after the
//! revocation, or that has forgotten it, still refuses; a token cached before the revocation is
//! refused by the remembered revocation, kept at least as long as the token can live.

use super::tokens::AccessClaims;
use crate::{Services, SystemActor, UnitOfWork};
use dashmap::DashMap;
use palisade_domain::{ApiKeyId, Role, SessionId, TenantId, UserId};
use palisade_store::auth_changes::{self, Change, ChangeKind};
use palisade_store::SystemScope;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

/// What a request needs to know about its user.
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_owner: bool,
    pub deleted: bool,
    pub created_at: OffsetDateTime,
    pub password_changed_at: Option<OffsetDateTime>,
    /// Whether the user proved they read mail at `email`.
    pub email_verified: bool,
    /// A confirmed second factor (TOTP, later passkeys).
    pub has_second_factor: bool,
}

#[derive(Debug, Clone)]
pub struct TenantSnapshot {
    pub id: TenantId,
    pub name: String,
    pub suspended: bool,
    pub password_policy: palisade_domain::PasswordPolicyPreset,
    pub require_2fa: palisade_domain::TwoFactorRequirement,
}

/// What a request needs to know about an API key.
#[derive(Debug, Clone)]
pub struct ApiKeySnapshot {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// Expanded: groups already resolved to scopes.
    pub scopes: std::collections::HashSet<palisade_domain::Scope>,
    pub created_by: UserId,
    pub revoked: bool,
    pub expires_at: Option<OffsetDateTime>,
    pub allowed_ips: Option<Vec<ipnet::IpNet>>,
}

impl From<&palisade_store::api_keys::ApiKey> for ApiKeySnapshot {
    fn from(k: &palisade_store::api_keys::ApiKey) -> Self {
        ApiKeySnapshot {
            id: k.id,
            tenant_id: k.tenant_id,
            name: k.name.clone(),
            scopes: k.scopes.iter().flat_map(|s| s.expand()).collect(),
            created_by: k.created_by,
            revoked: k.revoked_at.is_some(),
            expires_at: k.expires_at,
            allowed_ips: k.allowed_ips.as_ref().map(|ips| {
                ips.iter()
                    .filter_map(|s| {
                        s.parse::<ipnet::IpNet>()
                            .ok()
                            .or_else(|| s.parse::<std::net::IpAddr>().ok().map(Into::into))
                    })
                    .collect()
            }),
        }
    }
}

/// How long a revoked session is remembered: longer than any token it could have minted (an
/// access token, or an impersonation token of `platform::IMPERSONATION_MINUTES`).
pub fn revocation_memory(settings: &crate::settings::Settings) -> time::Duration {
    let access = time::Duration::try_from(settings.access_token_ttl).unwrap_or(time::Duration::DAY);
    let impersonation = time::Duration::minutes(crate::platform::IMPERSONATION_MINUTES);
    access.max(impersonation) + time::Duration::MINUTE
}
/// Sequence numbers can commit out of order on PostgreSQL; re-read this many behind the newest.
const SEQ_LOOKBACK: i64 = 256;
const MAX_CACHED_TOKENS: usize = 100_000;

#[derive(Default)]
pub struct AuthCache {
    tokens: DashMap<String, AccessClaims>,
    users: DashMap<UserId, Arc<UserSnapshot>>,
    tenants: DashMap<TenantId, Arc<TenantSnapshot>>,
    revoked_sessions: DashMap<SessionId, OffsetDateTime>,
    /// API keys by the SHA-256 of the secret.
    api_keys: DashMap<Vec<u8>, Arc<ApiKeySnapshot>>,
    epoch: AtomicU64,
    last_seq: AtomicI64,
    /// Changes made here, to be published to the other nodes (set when Redis is used).
    shared: std::sync::OnceLock<mpsc::Sender<(ChangeKind, Uuid)>>,
}

impl AuthCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn token(&self, token: &str) -> Option<AccessClaims> {
        self.tokens.get(token).map(|c| c.clone())
    }

    pub fn remember_token(&self, token: &str, claims: &AccessClaims) {
        if self.tokens.len() >= MAX_CACHED_TOKENS {
            self.tokens.clear();
        }
        self.tokens.insert(token.to_owned(), claims.clone());
    }

    pub fn is_revoked(&self, session: SessionId) -> bool {
        self.revoked_sessions.contains_key(&session)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn user(&self, id: UserId) -> Option<Arc<UserSnapshot>> {
        self.users.get(&id).map(|u| u.clone())
    }

    pub fn tenant(&self, id: TenantId) -> Option<Arc<TenantSnapshot>> {
        self.tenants.get(&id).map(|t| t.clone())
    }

    /// Caches a snapshot read when the epoch was `epoch`, unless something changed since.
    pub fn offer_user(&self, epoch: u64, u: Arc<UserSnapshot>) {
        if self.epoch() == epoch {
            self.users.insert(u.id, u);
        }
    }

    pub fn offer_tenant(&self, epoch: u64, t: Arc<TenantSnapshot>) {
        if self.epoch() == epoch {
            self.tenants.insert(t.id, t);
        }
    }

    pub fn api_key(&self, hash: &[u8]) -> Option<Arc<ApiKeySnapshot>> {
        self.api_keys.get(hash).map(|k| k.clone())
    }

    pub fn offer_api_key(&self, epoch: u64, hash: Vec<u8>, k: Arc<ApiKeySnapshot>) {
        if self.epoch() == epoch {
            self.api_keys.insert(hash, k);
        }
    }

    /// Forgets a changed API key here and (with Redis) on the other nodes. Call after the
    /// change committed; so for the others below.
    pub fn forget_api_key(&self, id: palisade_domain::ApiKeyId) {
        self.forget_api_key_here(id);
        self.share(ChangeKind::ApiKey, id.as_uuid());
    }

    fn forget_api_key_here(&self, id: palisade_domain::ApiKeyId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.api_keys.retain(|_, k| k.id != id);
    }

    pub fn revoke_session(&self, session: SessionId, now: OffsetDateTime) {
        self.revoke_session_here(session, now);
        self.share(ChangeKind::Session, session.as_uuid());
    }

    fn revoke_session_here(&self, session: SessionId, now: OffsetDateTime) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.revoked_sessions.insert(session, now);
    }

    /// Queues a committed change for the other nodes (nothing without Redis). Never blocks: a
    /// change that does not fit the queue still reaches them through the database poll.
    fn share(&self, kind: ChangeKind, subject: Uuid) {
        if let Some(tx) = self.shared.get() {
            let _ = tx.try_send((kind, subject));
        }
    }

    /// Remembers a revocation found in the database (nothing cached depends on it).
    pub fn note_revoked(&self, session: SessionId, now: OffsetDateTime) {
        self.revoked_sessions.entry(session).or_insert(now);
    }

    pub fn forget_user(&self, user: UserId) {
        self.forget_user_here(user);
        self.share(ChangeKind::User, user.as_uuid());
    }

    fn forget_user_here(&self, user: UserId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.remove(&user);
    }

    pub fn forget_tenant(&self, tenant: TenantId) {
        self.forget_tenant_here(tenant);
        self.share(ChangeKind::Tenant, tenant.as_uuid());
    }

    fn forget_tenant_here(&self, tenant: TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tenants.remove(&tenant);
    }

    fn apply(&self, c: &Change, now: OffsetDateTime) {
        self.apply_here(c.kind, c.subject_id, now);
        self.last_seq.fetch_max(c.seq, Ordering::SeqCst);
    }

    /// Applies a change another node made (heard from the database or from Redis).
    fn apply_here(&self, kind: ChangeKind, subject: Uuid, now: OffsetDateTime) {
        match kind {
            ChangeKind::Session => self.revoke_session_here(SessionId::from_uuid(subject), now),
            ChangeKind::User => self.forget_user_here(UserId::from_uuid(subject)),
            ChangeKind::Tenant => self.forget_tenant_here(TenantId::from_uuid(subject)),
            ChangeKind::ApiKey => self.forget_api_key_here(subject.into()),
        }
    }

    fn prune(&self, now: OffsetDateTime, memory: time::Duration) {
        self.revoked_sessions.retain(|_, at| now - *at < memory);
        let unix = now.unix_timestamp();
        self.tokens.retain(|_, c| c.exp > unix);
    }
}

/// Reads what changed within the revocation memory into the cache (at start).
pub async fn load_recent(s: &Services) -> anyhow::Result<()> {
    let now = s.now();
    let mut tx = s.store.begin_read(SystemScope::new("auth.sync")).await?;
    for c in auth_changes::since(&mut tx, now - revocation_memory(&s.settings)).await? {
        s.auth_cache.apply(&c, now);
    }
    Ok(())
}

async fn poll_once(s: &Services) -> anyhow::Result<()> {
    let now = s.now();
    let from = s.auth_cache.last_seq.load(Ordering::SeqCst) - SEQ_LOOKBACK;
    let mut tx = s.store.begin_read(SystemScope::new("auth.sync")).await?;
    for c in auth_changes::after(&mut tx, from).await? {
        s.auth_cache.apply(&c, now);
    }
    Ok(())
}

/// Keeps this node's cache in step with the others until the task is aborted.
pub fn spawn_sync(s: Services, every: Duration) -> tokio::task::JoinHandle<()> {
    // Every 240th round (a minute at the 250 ms the server uses) also forgets old changes.
    let mut n: u64 = 0;
    crate::worker::spawn_periodic("auth cache sync failed; retrying", every, None, move || {
        n = n.wrapping_add(1);
        let prune = n.is_multiple_of(240);
        let s = s.clone();
        async move {
            let polled = poll_once(&s).await;
            if prune {
                prune_old(&s).await;
            }
            polled.map(|()| crate::worker::Next::Wait)
        }
    })
}

/// The Redis channel (under the key prefix) of auth cache changes.
const SHARING_CHANNEL: &str = "auth_changes";
/// Changes waiting to be published; beyond this they reach the others through the poll.
const SHARING_QUEUE: usize = 4096;

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Session => "session",
        ChangeKind::User => "user",
        ChangeKind::Tenant => "tenant",
        ChangeKind::ApiKey => "api_key",
    }
}

fn kind_of(name: &str) -> Option<ChangeKind> {
    Some(match name {
        "session" => ChangeKind::Session,
        "user" => ChangeKind::User,
        "tenant" => ChangeKind::Tenant,
        "api_key" => ChangeKind::ApiKey,
        _ => return None,
    })
}

/// With Redis: publishes this node's committed changes (`1 <node> <kind> <id>`) and applies
/// the other nodes' as they arrive. Subscribed when this returns (unless Redis does not answer
/// within two seconds; the poll covers the gap). Nothing to start without Redis.
pub async fn spawn_sharing(s: &Services) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(redis) = s.redis.clone() else {
        return Vec::new();
    };
    let (tx, mut rx) = mpsc::channel::<(ChangeKind, Uuid)>(SHARING_QUEUE);
    if s.auth_cache.shared.set(tx).is_err() {
        return Vec::new(); // already sharing (a second start of the same services)
    }
    let node = Uuid::now_v7();
    let (mut heard, subscription) = redis
        .subscribe(SHARING_CHANNEL, Duration::from_secs(2))
        .await;
    let publisher = {
        let redis = redis.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while rx.recv_many(&mut batch, 64).await > 0 {
                let payloads: Vec<String> = batch
                    .drain(..)
                    .map(|(kind, id)| format!("1 {node} {} {id}", kind_name(kind)))
                    .collect();
                // Not taken: the others still read it from `auth_changes` within 250 ms.
                redis.publish(SHARING_CHANNEL, &payloads).await;
            }
        })
    };
    let cache = s.auth_cache.clone();
    let clock = s.clock.clone();
    let listener = tokio::spawn(async move {
        while let Some(payload) = heard.recv().await {
            let mut parts = payload.split(' ');
            let (Some("1"), Some(from), Some(kind), Some(id), None) = (
                parts.next(),
                parts.next(),
                parts.next().and_then(kind_of),
                parts.next().and_then(|i| i.parse::<Uuid>().ok()),
                parts.next(),
            ) else {
                tracing::warn!("auth cache: a malformed change was heard on Redis");
                continue;
            };
            if from.parse::<Uuid>().ok() == Some(node) {
                continue;
            }
            cache.apply_here(kind, id, clock.now());
        }
    });
    vec![subscription, publisher, listener]
}

/// Forgets revocations and recorded changes that no node can still need (best effort).
async fn prune_old(s: &Services) {
    let now = s.now();
    s.auth_cache.prune(now, revocation_memory(&s.settings));
    let scope = SystemScope::new("auth.sync.prune");
    if let Ok(mut uow) = UnitOfWork::system(s, SystemActor::Maintenance, scope).await {
        let pruned = auth_changes::prune(uow.tx(), now - time::Duration::days(1)).await;
        if pruned.is_ok() {
            let _ = uow.commit().await;
        }
    }
}

/// Records a change for other nodes (in the caller's transaction) — the caller applies it
/// locally after commit.
pub async fn record<S: palisade_store::Scope>(
    tx: &mut palisade_store::Tx<S>,
    kind: ChangeKind,
    subject: Uuid,
    now: OffsetDateTime,
) -> palisade_store::Result<()> {
    auth_changes::record(tx, kind, subject, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An impersonation token lives 30 minutes; its revocation must be remembered as long.
    #[test]
    fn a_revocation_is_remembered_as_long_as_the_longest_token_lives() {
        let settings = crate::settings::Settings::default();
        let cache = AuthCache::new();
        let t0 = OffsetDateTime::now_utc();
        let sid = SessionId::new();
        cache.revoke_session(sid, t0);
        let memory = revocation_memory(&settings);
        assert!(memory > time::Duration::minutes(crate::platform::IMPERSONATION_MINUTES));
        cache.prune(t0 + time::Duration::minutes(30), memory);
        assert!(cache.is_revoked(sid), "forgotten while a token could live");
        cache.prune(t0 + memory, memory);
        assert!(!cache.is_revoked(sid), "kept after every token expired");
    }
}
