//! Request rate limits (GCRA, via `governor`), keyed by client address or principal.
//!
//! These are per node. With several nodes behind a balancer each enforces its own budget; the
//! account lock (`auth::lockout`), which must hold across nodes, lives in the database instead.

use crate::settings::Settings;
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
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

/// What the API's overall limit is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiKey {
    Ip(IpAddr),
    User(uuid::Uuid),
}

pub struct Limits {
    pub login: Limit<IpAddr>,
    pub register: Limit<IpAddr>,
    pub api: Limit<ApiKey>,
    /// Audit log exports per hour, per tenant (or per super admin).
    pub export: Limit<uuid::Uuid>,
    /// Contact exports per hour, per tenant.
    pub contacts_export: Limit<uuid::Uuid>,
}

impl Limits {
    pub fn new(s: &Settings) -> Self {
        Limits {
            login: Limit::new(s.rate_limit_login_per_minute, Duration::from_secs(60)),
            register: Limit::new(s.rate_limit_register_per_hour, Duration::from_secs(3600)),
            api: Limit::new(s.rate_limit_api_per_minute, Duration::from_secs(60)),
            export: Limit::new(10, Duration::from_secs(3600)),
            contacts_export: Limit::new(10, Duration::from_secs(3600)),
        }
    }

    /// Drops state for keys that are back to a full budget (run periodically).
    pub fn shrink(&self) {
        self.login.retain_recent();
        self.register.retain_recent();
        self.api.retain_recent();
        self.export.retain_recent();
        self.contacts_export.retain_recent();
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
    fn zero_disables() {
        let l: Limit<u8> = Limit::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(l.check(&1).is_ok());
        }
    }
}
