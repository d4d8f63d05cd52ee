//! Request rate limits (GCRA, via `governor`), keyed by client address or principal.
//!
//! These are per node. With several nodes behind a balancer each enforces its own budget; the
//! account lock (`auth::lockout`), which must hold across nodes, lives in the database instead.
//!
//! Limits by address count a [`ClientKey`], not the raw address: an IPv6 client is counted by
//! its /64, because one subscriber is normally given a whole /64 (or more) and could otherwise
//! rotate through 2^64 addresses for a fresh budget each time; an IPv4-mapped IPv6 address counts
//! as its IPv4 address.

use crate::settings::Settings;
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock>;

/// A limit that may be switched off (a configured rate of 0).
pub struct Limit<K: std::hash::Hash + Eq + Clone> {
    limiter: Option<Keyed<K>>,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(per: u32, period: Duration) -> Self {
        let limiter = NonZeroU32::new(per).and_then(|n| {
            Quota::with_period(period / n.get()).map(|q| RateLimiter::dashmap(q.allow_burst(n)))
        });
        Limit { limiter }
    }

    /// `Ok` when allowed, or `Err(seconds to wait)`.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
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
}

impl Limits {
    pub fn new(s: &Settings) -> Self {
        Limits {
            login: Limit::new(s.rate_limit_login_per_minute, Duration::from_secs(60)),
            register: Limit::new(s.rate_limit_register_per_hour, Duration::from_secs(3600)),
            api: Limit::new(s.rate_limit_api_per_minute, Duration::from_secs(60)),
            webhook_failures: Limit::new(
                s.rate_limit_webhook_failures_per_minute,
                Duration::from_secs(60),
            ),
            export: Limit::new(10, Duration::from_secs(3600)),
            contacts_export: Limit::new(10, Duration::from_secs(3600)),
            password_forgot: Limit::new(
                s.rate_limit_password_forgot_per_hour,
                Duration::from_secs(3600),
            ),
            email_verify: Limit::new(20, Duration::from_secs(60)),
            two_factor: Limit::new(10, Duration::from_secs(60)),
            passkey_registrations: Limit::new(20, Duration::from_secs(3600)),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_then_refused_with_a_wait() {
        let l: Limit<u8> = Limit::new(3, Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(l.check(&1).is_ok());
        }
        let wait = l.check(&1).unwrap_err();
        assert!((1..=1200).contains(&wait), "{wait}");
        assert!(l.check(&2).is_ok(), "other keys keep their own budget");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
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
        assert!(l.check(&key("2001:db8::1")).is_ok());
        assert!(l.check(&key("2001:db8::2")).is_ok());
        assert!(
            l.check(&key("2001:db8::3")).is_err(),
            "rotating inside the /64 spends the same budget"
        );
        assert!(l.check(&key("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn zero_disables() {
        let l: Limit<u8> = Limit::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(l.check(&1).is_ok());
        }
    }
}
