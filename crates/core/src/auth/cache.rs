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
//! ([`spawn_sync`]). A snapshot loaded concurrently with a change is discarded rather than cached
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

    pub fn forget_api_key(&self, id: palisade_domain::ApiKeyId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.api_keys.retain(|_, k| k.id != id);
    }

    pub fn revoke_session(&self, session: SessionId, now: OffsetDateTime) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.revoked_sessions.insert(session, now);
    }

    /// Remembers a revocation found in the database (nothing cached depends on it).
    pub fn note_revoked(&self, session: SessionId, now: OffsetDateTime) {
        self.revoked_sessions.entry(session).or_insert(now);
    }

    pub fn forget_user(&self, user: UserId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.remove(&user);
    }

    pub fn forget_tenant(&self, tenant: TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tenants.remove(&tenant);
    }

    fn apply(&self, c: &Change, now: OffsetDateTime) {
        match c.kind {
            ChangeKind::Session => self.revoke_session(SessionId::from_uuid(c.subject_id), now),
            ChangeKind::User => self.forget_user(UserId::from_uuid(c.subject_id)),
            ChangeKind::Tenant => self.forget_tenant(TenantId::from_uuid(c.subject_id)),
            ChangeKind::ApiKey => self.forget_api_key(c.subject_id.into()),
        }
        self.last_seq.fetch_max(c.seq, Ordering::SeqCst);
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
