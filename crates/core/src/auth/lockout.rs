//! Brute-force protection for one login name.
//!
//! Threat: online guessing of one account's password, and its mirror image, an attacker locking
//! the owner out. State machine per normalised email (kept for unknown emails too, so the
//! answers do not reveal which accounts exist):
//!
//! ```text
//!   open --failure--> open (failures+1, answer delayed 100 ms · 2^(failures-1), ≤ 2 s)
//!   open --failure #threshold--> locked until now + lockout window
//!   locked --attempt--> 429 with Retry-After, not counted, no hash computed
//!   locked --failure let through (known address)--> locked, lock neither extended nor lifted
//!   locked --window passes--> open
//!   any --success or admin unlock--> cleared
//! ```
//!
//! Every failure counts however many run at once: the count and the lock are decided in the
//! database, in the one statement that records the failure (`login_throttle::record_failure`),
//! never from a value read earlier. The lock is per login name, not per address, so spreading
//! guesses over many addresses does not escape it.
//!
//! Failures older than the lockout window no longer count, and such rows are pruned. A flood from many addresses cannot
//! keep the owner out: attempts during a lock are not counted (so the lock never extends itself),
//! and an attempt from an address the account has signed in from in the last 30 days is let
//! through a lock to try its password.

use crate::settings::Settings;
use palisade_store::login_throttle::{FailureRule, ThrottleState};
use sha2::{Digest, Sha256};
use std::time::Duration;
use time::OffsetDateTime;

/// Lifts the throttle of `email` (its failures and any lock), in a unit of its own, once the
/// owner proved who they are: a completed sign-in, a password reset.
pub async fn clear(
    s: &crate::Services,
    meta: &super::RequestMeta,
    email: &str,
) -> crate::AppResult<()> {
    let scope = palisade_store::SystemScope::new("login.throttle");
    let mut uow = crate::UnitOfWork::anonymous(s, meta, scope).await?;
    palisade_store::login_throttle::clear(uow.tx(), &key(email)).await?;
    uow.commit().await
}

/// The throttle key of a login name.
pub fn key(email: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"palisade login throttle v1\0");
    h.update(email.as_bytes());
    h.finalize().to_vec()
}

/// Seconds left on a lock, if locked.
pub fn locked_for(state: Option<&ThrottleState>, now: OffsetDateTime) -> Option<u64> {
    let until = state?.locked_until?;
    (until > now).then(|| {
        let secs = (until - now).whole_seconds().max(0);
        u64::try_from(secs).unwrap_or(0) + 1
    })
}

/// The rule a failure at `now` is counted by (the store applies it in one write).
pub fn failure_rule(settings: &Settings, now: OffsetDateTime) -> FailureRule {
    let window =
        time::Duration::try_from(settings.lockout_duration).unwrap_or(time::Duration::MINUTE);
    FailureRule {
        now,
        counts_after: now - window,
        lock_until: now + window,
        threshold: i64::from(settings.lockout_threshold.max(1)),
    }
}

/// Whether the failure that left `state` is the one that locked the account: only that one
/// ends exactly on the threshold with a lock (failures during the lock count above it).
pub fn locked_by(state: &ThrottleState, rule: &FailureRule) -> bool {
    state.locked_until.is_some() && state.failures == rule.threshold
}

/// How long to hold the answer to the `failures`-th consecutive failure.
pub fn delay(settings: &Settings, failures: i64) -> Duration {
    let steps = u32::try_from(failures.clamp(1, 8) - 1).unwrap_or(0);
    settings
        .login_failure_delay
        .saturating_mul(1 << steps)
        .min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_spans_the_lockout_window() {
        let s = Settings::default();
        let t0 = OffsetDateTime::now_utc();
        let rule = failure_rule(&s, t0);
        assert_eq!(rule.threshold, 5);
        assert_eq!(rule.lock_until - t0, time::Duration::minutes(15));
        assert_eq!(t0 - rule.counts_after, time::Duration::minutes(15));
        let locking = ThrottleState {
            failures: 5,
            last_failure_at: t0,
            locked_until: Some(rule.lock_until),
        };
        assert!(locked_by(&locking, &rule));
        assert_eq!(locked_for(Some(&locking), t0), Some(15 * 60 + 1));
        assert_eq!(
            locked_for(Some(&locking), t0 + time::Duration::minutes(15)),
            None
        );
        let during = ThrottleState {
            failures: 6,
            ..locking
        };
        assert!(!locked_by(&during, &rule), "a failure during the lock");
    }

    #[test]
    fn the_delay_grows_and_is_capped() {
        let s = Settings::default();
        assert_eq!(delay(&s, 1), Duration::from_millis(100));
        assert_eq!(delay(&s, 3), Duration::from_millis(400));
        assert_eq!(delay(&s, 50), Duration::from_secs(2));
    }

    #[test]
    fn keys_do_not_reveal_the_email() {
        assert_eq!(key("a@b.co").len(), 32);
        assert_ne!(key("a@b.co"), key("b@b.co"));
    }
}
