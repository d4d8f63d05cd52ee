//! One background worker shape for every periodic job of a node (issue 12): run a round at
//! start and then every `every` (a slow round delays the next tick rather than bunching them:
//! [`MissedTickBehavior::Delay`]), or at once when the optional [`Notify`] wakes it; a round
//! that reports [`Next::Again`] (it claimed a full batch) is followed by another at once, so a
//! backlog drains without waiting for the timer; a failed round is logged (`error` field, the
//! worker's own message) and the worker goes on at the next tick.
//!
//! A worker stops when its [`JoinHandle`] is aborted, which the server does at shutdown before
//! it runs the final flushes itself (crates/palisade/src/app.rs) — so an abort can never race a
//! flush that shutdown depends on.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// What a worker does after a successful round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for the next tick (or wake-up).
    Wait,
    /// Run another round at once (the round claimed a full batch: more is waiting).
    Again,
}

/// Spawns a worker that calls `run` at start, every `every` and whenever `wake` is notified,
/// until the returned handle is aborted. A failed round is logged at `warn` as
/// `error = %e, "{failed}"` (e.g. `"webhook delivery round failed"`) and ends the drain; the
/// worker carries on at the next tick.
pub fn spawn_periodic<F, Fut, E>(
    failed: &'static str,
    every: Duration,
    wake: Option<Arc<Notify>>,
    mut run: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Next, E>> + Send,
    E: Display,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            match &wake {
                Some(kick) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = kick.notified() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            loop {
                match run().await {
                    Ok(Next::Again) => continue,
                    Ok(Next::Wait) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "{failed}");
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    /// Lets the spawned worker run everything that is ready at the current (paused) instant.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn counting(n: &Arc<AtomicUsize>) -> impl FnMut() -> std::future::Ready<Result<Next, String>> {
        let n = n.clone();
        move || {
            n.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(Next::Wait))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_start_and_then_once_per_interval() {
        let n = counter();
        let w = spawn_periodic("failed", Duration::from_secs(10), None, counting(&n));
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1, "a round at start");
        tokio::time::advance(Duration::from_secs(9)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1, "not before the interval");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 2);
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(10)).await;
            settle().await;
        }
        assert_eq!(n.load(Ordering::SeqCst), 5);
        w.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_round_delays_the_next_tick_instead_of_bunching() {
        let n = counter();
        let n2 = n.clone();
        // The first round takes 35 s, the others no time.
        let w = spawn_periodic("failed", Duration::from_secs(10), None, move || {
            let n = n2.clone();
            async move {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_secs(35)).await;
                }
                Ok::<_, String>(Next::Wait)
            }
        });
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        // It ends at 35 s: one round then, not the three missed ticks (10, 20, 30 s) at once...
        tokio::time::advance(Duration::from_secs(35)).await;
        settle().await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            2,
            "one delayed tick, not three bunched"
        );
        // ...and the next a whole interval after it (45 s).
        tokio::time::advance(Duration::from_secs(9)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 3);
        w.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_runs_a_round_before_the_interval() {
        let n = counter();
        let kick = Arc::new(Notify::new());
        let w = spawn_periodic(
            "failed",
            Duration::from_secs(3600),
            Some(kick.clone()),
            counting(&n),
        );
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        kick.notify_one();
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 2, "woken without the timer");
        // Every wake-up runs a round.
        kick.notify_one();
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 3);
        w.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn again_drains_at_once_and_an_error_ends_the_drain_but_not_the_worker() {
        let n = counter();
        let n2 = n.clone();
        // Rounds 1-3: a full batch each; round 4 fails; round 5 (next tick) is empty.
        let w = spawn_periodic("failed", Duration::from_secs(10), None, move || {
            let i = n2.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(match i {
                1..=3 => Ok(Next::Again),
                4 => Err("database unavailable".to_string()),
                _ => Ok(Next::Wait),
            })
        });
        settle().await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            4,
            "drained at once, stopped at the error"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            5,
            "the error did not stop the worker"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 6);
        w.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn stops_when_aborted_at_shutdown() {
        let n = counter();
        let kick = Arc::new(Notify::new());
        let w = spawn_periodic(
            "failed",
            Duration::from_secs(10),
            Some(kick.clone()),
            counting(&n),
        );
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        w.abort();
        assert!(w.await.unwrap_err().is_cancelled());
        kick.notify_one();
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
        assert_eq!(n.load(Ordering::SeqCst), 1, "no round after shutdown");
    }
}
