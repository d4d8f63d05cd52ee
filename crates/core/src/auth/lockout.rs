//! Brute-force protection for one login name.
//!
//! Threat: online guessing of one account's password, and its mirror image, an attacker locking
//! the owner out. State machine per normalised email (kept for unknown emails too, so the
//! answers do not reveal which accounts exist):
//!
//! ```text
//!   open --failure--> open (failures+1, answer delayed 100 ms · 2^(failures-1), ≤ 2 s)
//!   open --failure #threshold--> locked until now + lockout window (failures reset to 0)
//!   locked --attempt--> 429 with Retry-After, not counted, no hash computed
//!   locked --window passes--> open
//!   any --success or admin unlock--> cleared
//! ```
//!
//! Failures older than the lockout window no longer count. A flood from many addresses cannot
//! keep the owner out: attempts during a lock are not counted (so the lock never extends itself),
//! and an attempt from an address the account has signed in from in the last 30 days is let
//! through a lock to try its password.

use crate::settings::Settings;
use palisade_store::login_throttle::ThrottleState;
use sha2::{Digest, Sha256};
use std::time::Duration;
use time::OffsetDateTime;

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

/// The state after one more failure, and whether this failure locked the account.
pub fn after_failure(
    prev: Option<&ThrottleState>,
    settings: &Settings,
    now: OffsetDateTime,
) -> (ThrottleState, bool) {
    // A failure let through an active lock (from an address the owner has used) neither counts
    // nor lifts the lock: only its expiry, a success or an admin unlock does.
    if let Some(p) = prev.filter(|p| p.locked_until.is_some_and(|u| u > now)) {
        return (p.clone(), false);
    }
    let window =
        time::Duration::try_from(settings.lockout_duration).unwrap_or(time::Duration::MINUTE);
    let recent = prev
        .filter(|p| now - p.last_failure_at < window && p.locked_until.is_none_or(|u| u > now))
        .map_or(0, |p| p.failures);
    let failures = recent + 1;
    let threshold = i64::from(settings.lockout_threshold.max(1));
    if failures >= threshold {
        (
            ThrottleState {
                failures: 0,
                last_failure_at: now,
                locked_until: Some(now + window),
            },
            true,
        )
    } else {
        (
            ThrottleState {
                failures,
                last_failure_at: now,
                locked_until: None,
            },
            false,
        )
    }
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
    fn the_fifth_failure_locks_for_the_window_and_the_lock_expires() {
        let s = Settings::default();
        let t0 = OffsetDateTime::now_utc();
        let mut state: Option<ThrottleState> = None;
        for i in 1..=4 {
            let (next, locked) = after_failure(state.as_ref(), &s, t0);
            assert!(!locked, "failure {i}");
            assert_eq!(next.failures, i);
            state = Some(next);
        }
        let (next, locked) = after_failure(state.as_ref(), &s, t0);
        assert!(locked);
        assert_eq!(locked_for(Some(&next), t0), Some(15 * 60 + 1));
        assert_eq!(
            locked_for(Some(&next), t0 + time::Duration::minutes(15)),
            None
        );
        // A failure during the lock keeps it as it is.
        let (during, locked) = after_failure(Some(&next), &s, t0 + time::Duration::minutes(1));
        assert!(!locked);
        assert_eq!(during.locked_until, next.locked_until);
        // After the lock, counting starts again.
        let (after, locked) = after_failure(Some(&next), &s, t0 + time::Duration::minutes(16));
        assert!(!locked);
        assert_eq!(after.failures, 1);
    }

    #[test]
    fn old_failures_stop_counting() {
        let s = Settings::default();
        let t0 = OffsetDateTime::now_utc();
        let old = ThrottleState {
            failures: 4,
            last_failure_at: t0,
            locked_until: None,
        };
        let (next, locked) = after_failure(Some(&old), &s, t0 + time::Duration::minutes(20));
        assert!(!locked);
        assert_eq!(next.failures, 1);
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
