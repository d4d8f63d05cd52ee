//! Request rate limits (GCRA), keyed by client address or principal.
//!
//! Without Redis these are per node (`governor`, in-process): with several nodes behind a
//! balancer each enforces its own budget. With `PALISADE_REDIS_URL` set every limit is decided
//! in Redis (`coordination::Redis::gcra`, one atomic script per key), so the budget holds across
//! all nodes together; when Redis does not answer, the node's in-process limit decides instead
//! (never no limit), and the fallback is counted and logged (see `coordination`). The account
//! lock (`auth::lockout`), which must hold across nodes with or without Redis, lives in the
//! database.
//!
//! Limits by address count a [`ClientKey`], not the raw address: an IPv6 client is counted by
//! its /64, because one subscriber is normally given a whole /64 (or more) and could otherwise
//! rotate through 2^64 addresses for a fresh budget each time; an IPv4-mapped IPv6 address counts
//! as its IPv4 address.

use crate::coordination::Redis;
use crate::settings::Settings;
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock>;

/// A limit that may be switched off (a configured rate of 0).
pub struct Limit<K: std::hash::Hash + Eq + Clone> {
    /// This node's limit: the only one without Redis, the fallback with it.
    limiter: Option<Keyed<K>>,
    shared: Option<Shared>,
}

/// The same quota decided in Redis for every node.
struct Shared {
    redis: Arc<Redis>,
    /// The limit's fixed name: part of its Redis keys and the fallback metric's label.
    name: &'static str,
    emission: Duration,
    burst: u32,
}

impl<K: std::hash::Hash + Eq + Clone + std::fmt::Display> Limit<K> {
    fn new(per: u32, period: Duration) -> Self {
        let limiter = NonZeroU32::new(per).and_then(|n| {
            Quota::with_period(period / n.get()).map(|q| RateLimiter::dashmap(q.allow_burst(n)))
        });
        Limit {
            limiter,
            shared: None,
        }
    }

    /// The same quota, decided in Redis across nodes (the in-process limit is the fallback).
    fn shared(per: u32, period: Duration, name: &'static str, redis: Option<&Arc<Redis>>) -> Self {
        let mut limit = Self::new(per, period);
        if let (Some(redis), Some(n)) = (redis, NonZeroU32::new(per)) {
            limit.shared = Some(Shared {
                redis: redis.clone(),
                name,
                emission: period / n.get(),
                burst: n.get(),
            });
        }
        limit
    }

    /// `Ok` when allowed, or `Err(seconds to wait)`.
    pub async fn check(&self, key: &K) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        if let Some(sh) = &self.shared {
            let key = format!("rl:{}:{key}", sh.name);
            if let Some(decided) = sh.redis.gcra(&key, sh.emission, sh.burst).await {
                return decided;
            }
            crate::metrics::redis_fallback(sh.name);
        }
        l.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
        }
    }
}

/// What a limit by client address counts: an IPv4 address, or an IPv6 address's /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match crate::client_address::canonical(ip) {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => ClientKey(v4),
        }
    }
}

/// What the API's overall limit is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiKey {
    Ip(ClientKey),
    User(uuid::Uuid),
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Ip(ip) => write!(f, "ip:{ip}"),
            ApiKey::User(u) => write!(f, "user:{u}"),
        }
    }
}

pub struct Limits {
    pub login: Limit<ClientKey>,
    pub register: Limit<ClientKey>,
    pub api: Limit<ApiKey>,
    /// Refused WhatsApp webhook POSTs (unknown or disconnected connection, missing or wrong
    /// signature) per minute, per client address. Correctly signed POSTs are never counted.
    pub webhook_failures: Limit<ClientKey>,
    /// Audit log exports per hour, per tenant (or per super admin).
    pub export: Limit<uuid::Uuid>,
    /// Contact exports per hour, per tenant.
    pub contacts_export: Limit<uuid::Uuid>,
    /// Password reset requests per hour, per client address.
    pub password_forgot: Limit<ClientKey>,
    /// Email verification requests per minute, per user: a flood guard (each code dies after 5
    /// wrong tries anyway).
    pub email_verify: Limit<uuid::Uuid>,
    /// Changes to a user's second factors (each checks the password or a code) per minute,
    /// per user.
    pub two_factor: Limit<uuid::Uuid>,
    /// Passkey registrations started per hour, per user.
    pub passkey_registrations: Limit<uuid::Uuid>,
    /// Password sign-ins refused by `login` that are still recorded for the detection rules
    /// (`auth::sessions::note_throttled`), per minute, per client address: what a flood of
    /// refused sign-ins may write.
    pub throttled_logins: Limit<ClientKey>,
}

impl Limits {
    /// The limits, shared through `redis` when it is given (see the module comment).
    pub fn new(s: &Settings, redis: Option<&Arc<Redis>>) -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        Limits {
            login: Limit::shared(s.rate_limit_login_per_minute, MINUTE, "login", redis),
            register: Limit::shared(s.rate_limit_register_per_hour, HOUR, "register", redis),
            api: Limit::shared(s.rate_limit_api_per_minute, MINUTE, "api", redis),
            webhook_failures: Limit::shared(
                s.rate_limit_webhook_failures_per_minute,
                MINUTE,
                "webhook_failures",
                redis,
            ),
            export: Limit::shared(10, HOUR, "export", redis),
            contacts_export: Limit::shared(10, HOUR, "contacts_export", redis),
            password_forgot: Limit::shared(
                s.rate_limit_password_forgot_per_hour,
                HOUR,
                "password_forgot",
                redis,
            ),
            email_verify: Limit::shared(20, MINUTE, "email_verify", redis),
            two_factor: Limit::shared(10, MINUTE, "two_factor", redis),
            passkey_registrations: Limit::shared(20, HOUR, "passkey_registrations", redis),
            throttled_logins: Limit::shared(20, MINUTE, "throttled_logins", redis),
        }
    }

    /// Drops state for keys that are back to a full budget (run periodically).
    pub fn shrink(&self) {
        self.login.retain_recent();
        self.register.retain_recent();
        self.api.retain_recent();
        self.webhook_failures.retain_recent();
        self.export.retain_recent();
        self.contacts_export.retain_recent();
        self.password_forgot.retain_recent();
        self.email_verify.retain_recent();
        self.two_factor.retain_recent();
        self.passkey_registrations.retain_recent();
        self.throttled_logins.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_budget_is_spent_then_refused_with_a_wait() {
        let l: Limit<u8> = Limit::new(3, Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(l.check(&1).await.is_ok());
        }
        let wait = l.check(&1).await.unwrap_err();
        assert!((1..=1200).contains(&wait), "{wait}");
        assert!(
            l.check(&2).await.is_ok(),
            "other keys keep their own budget"
        );
    }

    #[tokio::test]
    async fn ipv6_clients_are_counted_by_their_slash_64() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.7"));
        assert_ne!(
            key("203.0.113.7"),
            key("203.0.113.8"),
            "IPv4 stays per address"
        );

        let l: Limit<ClientKey> = Limit::new(2, Duration::from_secs(60));
        assert!(l.check(&key("2001:db8::1")).await.is_ok());
        assert!(l.check(&key("2001:db8::2")).await.is_ok());
        assert!(
            l.check(&key("2001:db8::3")).await.is_err(),
            "rotating inside the /64 spends the same budget"
        );
        assert!(l.check(&key("2001:db8:0:1::1")).await.is_ok());
    }

    #[tokio::test]
    async fn zero_disables() {
        let l: Limit<u8> = Limit::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(l.check(&1).await.is_ok());
        }
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    /// Redis configured but unreachable: the node's own limit decides, never "no limit".
    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_node_s_own_limit() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = Arc::new(Redis::new(&format!("redis://127.0.0.1:{port}"), "t", None).unwrap());
        let l: Limit<u8> = Limit::shared(3, Duration::from_secs(60), "test", Some(&redis));
        for _ in 0..3 {
            assert!(l.check(&1).await.is_ok());
        }
        assert!(l.check(&1).await.is_err());
    }

    /// With Redis, two nodes' limits (two `Limits` on one Redis) share one budget.
    #[tokio::test]
    async fn two_nodes_share_one_budget_through_redis() {
        let Some(url) = std::env::var("PALISADE_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            eprintln!("skipped: set PALISADE_TEST_REDIS_URL to run with Redis");
            return;
        };
        let prefix = format!("palisade-test-{}", uuid::Uuid::new_v4().simple());
        let settings = Settings::default(); // 5 sign-ins a minute per address
        let a = Limits::new(
            &settings,
            Some(&Arc::new(Redis::new(&url, &prefix, None).unwrap())),
        );
        let b = Limits::new(
            &settings,
            Some(&Arc::new(Redis::new(&url, &prefix, None).unwrap())),
        );
        let ip = ClientKey::of("203.0.113.7".parse().unwrap());
        for i in 0..5 {
            let node = if i % 2 == 0 { &a } else { &b };
            assert!(node.login.check(&ip).await.is_ok(), "attempt {i}");
        }
        assert!(a.login.check(&ip).await.is_err());
        assert!(b.login.check(&ip).await.is_err());
        let other = ClientKey::of("203.0.113.8".parse().unwrap());
        assert!(a.login.check(&other).await.is_ok());
    }
}
