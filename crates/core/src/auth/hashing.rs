//! Password hashing: argon2id on a bounded blocking pool.
//!
//! Threat: a login flood turns hashing (~20 ms of a core each) into a denial of service, and
//! answers or timings reveal which emails have accounts. Invariants:
//! - At most `concurrency` hashes run at once, on blocking threads, so the async workers keep
//!   serving; at most `queue` more wait, and beyond that the caller gets `Busy` at once (the web
//!   layer answers 503 with Retry-After) instead of piling up work.
//! - Parameters are OWASP's argon2id minimum (m = 19 MiB, t = 2, p = 1) or stronger; they are in
//!   every PHC string, and a hash made with weaker ones is flagged for upgrade on the next login.
//! - No hash runs while a database write transaction is open (on SQLite that would stall every
//!   write of every tenant; on PostgreSQL it holds a pooled connection): callers verify and hash
//!   first, then open the transaction and re-check what the hash depended on.
//! - An unknown account is verified against a dummy hash made with the same parameters, so the
//!   work, and therefore the time, is the same as for a real account.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks in progress")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but hashed with weaker parameters than today's: store a new hash.
    YesButRehash,
}

impl Verified {
    pub fn ok(self) -> bool {
        !matches!(self, Verified::No)
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Callers inside `run`: hashing or waiting for a permit.
    waiting: Arc<AtomicUsize>,
    /// concurrency + queue: beyond this many callers, refuse.
    capacity: usize,
    concurrency: u32,
    dummy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            capacity: concurrency.max(1) + queue,
            concurrency: u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let _w = Waiting(&self.waiting);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("hash pool closed: {e}"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| anyhow::anyhow!("hash task failed: {e}"))?
            .map_err(HashError::Internal)
    }

    /// Takes every hashing slot until the returned guard is dropped: callers queue (up to the
    /// bound) and no hash runs. For tests that prove nothing else waits while hashes are slow —
    /// e.g. that no database transaction is held across a hash.
    pub async fn hold_all(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        self.permits
            .clone()
            .acquire_many_owned(self.concurrency)
            .await
            .map_err(|e| HashError::Internal(anyhow::anyhow!("hash pool closed: {e}")))
    }

    /// How many callers are hashing or waiting to (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = password.to_owned();
        self.run(move || hash_now(&pw)).await
    }

    /// Verifies against a stored hash, or (when `stored` is `None`) against the dummy hash so an
    /// unknown account costs the same as a known one. `None` never verifies.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let pw = password.to_owned();
        let v = self.run(move || Ok(verify_now(&pw, &hash))).await?;
        Ok(if real { v } else { Verified::No })
    }

    async fn dummy_hash(&self) -> Result<String, HashError> {
        let this = self.clone();
        self.dummy
            .get_or_try_init(
                || async move { this.hash("palisade dummy password for timing").await },
            )
            .await
            .cloned()
    }
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?
        .to_string())
}

fn verify_now(password: &str, stored: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    // Verify with the parameters stored in the hash, then compare them with today's.
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map_or(true, |p| {
            p.m_cost() < M_COST_KIB || p.t_cost() < T_COST || p.p_cost() < P_COST
        });
    if weaker {
        Verified::YesButRehash
    } else {
        Verified::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_owasp_parameters() {
        let h = PasswordHasher::new(1, 8);
        let hash = h.hash("correct-orbit-lantern").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            h.verify("correct-orbit-lantern", Some(&hash))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(h.verify("wrong", Some(&hash)).await.unwrap(), Verified::No);
        assert_eq!(
            h.verify("palisade dummy password for timing", None)
                .await
                .unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn weaker_hashes_are_flagged_for_upgrade() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"pw-for-upgrade",
            &SaltString::generate(&mut rand::rngs::OsRng),
        )
        .unwrap()
        .to_string();
        let h = PasswordHasher::new(1, 8);
        assert_eq!(
            h.verify("pw-for-upgrade", Some(&weak)).await.unwrap(),
            Verified::YesButRehash
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let h = PasswordHasher::new(1, 0);
        let hold = h.permits.clone().acquire_owned().await.unwrap();
        // The only permit is held elsewhere: one caller may wait for it, the next is refused.
        let h2 = h.clone();
        let waiter = tokio::spawn(async move { h2.hash("x").await });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(h.hash("y").await, Err(HashError::Busy)));
        drop(hold);
        assert!(waiter.await.unwrap().is_ok());
    }
}
