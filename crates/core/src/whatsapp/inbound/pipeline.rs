//! This node's ingest pipeline: verified POSTs are batched into one transaction each (group
//! commit), a failed batch is stored for one-by-one processing, and a worker picks up whatever
//! is left unprocessed. What a batch means is worked out in [`super::apply`].

use super::super::webhook_refusals;
use super::apply::process_in;
use crate::worker::Next;
use crate::{AppError, AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::ConnectionId;
use palisade_domain::InboundEventId;
use palisade_store::whatsapp_connections::Connection;
use palisade_store::whatsapp_inbound::{self as store, InboundEvent};
use palisade_store::SystemScope;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const MAX_ATTEMPTS: i64 = 5;
const BATCH: i64 = 100;
/// At most this many POSTs share one transaction…
pub const BATCH_EVENTS: usize = 32;
/// …and at most this many body bytes (beyond the first POST).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// POSTs waiting for the pipeline; a full queue makes handlers wait (back-pressure).
const QUEUE: usize = 1024;
/// Batches processed at once on PostgreSQL.
pub const PG_PIPELINES: usize = 3;

/// A verified POST waiting for the pipeline, and where to report its commit.
struct Job {
    event: InboundEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// This node's ingest pipeline (see the module docs of [`super`]): verified POSTs queue here, and the task
/// started by [`spawn_pipeline`] stores and processes them in batches. Until that task runs
/// (tools and tests that use the services without serving), each POST is handled on its own.
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    running: AtomicBool,
    /// Active connections looked up for recent POSTs, for [`CONNECTION_TTL`]: Meta posts
    /// hundreds of times a second per number under load, and each lookup was a read
    /// transaction. Disconnecting or deleting a connection forgets it on this node at once;
    /// another node may accept its POSTs (signature still checked) for up to the TTL.
    connections: Mutex<HashMap<ConnectionId, (Instant, Connection)>>,
    /// Refused POSTs per connection and minute, written as one audit record each.
    pub refusals: webhook_refusals::RefusalLog,
}

/// How long a node reuses a connection it looked up for a webhook POST.
pub const CONNECTION_TTL: Duration = Duration::from_secs(1);

impl Default for Pipeline {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Pipeline {
            tx,
            rx: Mutex::new(Some(rx)),
            running: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            refusals: webhook_refusals::RefusalLog::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pipeline {
    pub(super) fn cached(&self, id: ConnectionId) -> Option<Connection> {
        lock(&self.connections)
            .get(&id)
            .filter(|(at, _)| at.elapsed() < CONNECTION_TTL)
            .map(|(_, c)| c.clone())
    }

    pub(super) fn remember(&self, c: &Connection) {
        let mut map = lock(&self.connections);
        if map.len() >= 1024 {
            map.retain(|_, (at, _)| at.elapsed() < CONNECTION_TTL);
        }
        map.insert(c.id, (Instant::now(), c.clone()));
    }

    /// Forgets a connection that was disconnected or deleted (call after the commit).
    pub fn forget(&self, id: ConnectionId) {
        lock(&self.connections).remove(&id);
    }

    /// Stores and processes one verified POST; returns once it is committed.
    pub(super) async fn submit(&self, s: &Services, event: InboundEvent) -> AppResult<()> {
        if !self.running.load(Ordering::Acquire) {
            return store_batch(s, vec![event]).await;
        }
        let (done, committed) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.tx.send(Job { event, done }).await {
            // No pipeline task left (they end only with the process): store it here.
            return store_batch(s, vec![job.event]).await;
        }
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(anyhow::anyhow!("storing a WhatsApp webhook failed: {why}").into()),
            // The task ended mid-batch (shutdown): nothing was committed; Meta retries.
            Err(_) => Err(AppError::Unavailable {
                message: "the webhook was not stored; retry".into(),
                retry_after_secs: 1,
            }),
        }
    }
}

/// Starts this node's pipeline (once; empty if it already runs): one task on SQLite, whose
/// single writer serialises transactions anyway, [`PG_PIPELINES`] on PostgreSQL, which runs
/// them in parallel (the batch's rows are written in one order, so they do not deadlock; a
/// batch that fails anyway is stored for one-by-one processing).
pub fn spawn_pipeline(s: Services) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(rx) = lock(&s.inbound.rx).take() else {
        return Vec::new();
    };
    s.inbound.running.store(true, Ordering::Release);
    let tasks = match s.store.backend() {
        palisade_store::Backend::Sqlite => 1,
        palisade_store::Backend::Postgres => PG_PIPELINES,
    };
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    (0..tasks)
        .map(|_| {
            let (s, rx) = (s.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let jobs = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        // Everything already waiting joins this batch (group commit), within
                        // the bounds.
                        let mut bytes = 0;
                        let mut jobs = vec![first];
                        while jobs.len() < BATCH_EVENTS && bytes < BATCH_BYTES {
                            let Ok(job) = rx.try_recv() else { break };
                            bytes += job.event.body.len();
                            jobs.push(job);
                        }
                        jobs
                    };
                    let (events, dones): (Vec<_>, Vec<_>) =
                        jobs.into_iter().map(|j| (j.event, j.done)).unzip();
                    let result = store_batch(&s, events).await.map_err(|e| e.to_string());
                    for done in dones {
                        let _ = done.send(result.clone());
                    }
                }
            })
        })
        .collect()
}

/// Stores and processes `events` in one unit of work, then runs their follow-ups. If that
/// fails on the database, stores them unprocessed instead (and starts processing each on its
/// own); an error means none was stored.
async fn store_batch(s: &Services, mut events: Vec<InboundEvent>) -> AppResult<()> {
    match process_batch(s, &mut events).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, events = events.len(),
                "processing a batch of WhatsApp webhooks failed; stored for one-by-one processing");
            let mut uow = inbound_work(s, "whatsapp.webhook.receive").await?;
            for event in &mut events {
                event.processed_at = None;
                event.attempts = 0;
                event.error = None;
            }
            store::insert_all(uow.tx(), &events).await?;
            uow.commit().await?;
            for event in &events {
                spawn_process(s, event.id);
            }
            Ok(())
        }
    }
}

/// The inbound pipeline's unit of work, in a system scope named `what`.
async fn inbound_work<'a>(
    s: &'a Services,
    what: &'static str,
) -> AppResult<UnitOfWork<'a, SystemScope>> {
    UnitOfWork::system(s, SystemActor::InboundPipeline, SystemScope::new(what)).await
}

async fn process_batch(s: &Services, events: &mut [InboundEvent]) -> AppResult<()> {
    let mut uow = inbound_work(s, "whatsapp.inbound.process").await?;
    let now = uow.now();
    let errors = process_in(&mut uow, events).await?;
    for (event, error) in events.iter_mut().zip(errors) {
        event.processed_at = Some(now);
        event.attempts = 1;
        event.error = error;
    }
    store::insert_all(uow.tx(), events).await?;
    uow.commit().await
}

/// Spawns the processing of one stored, unprocessed event.
pub fn spawn_process(s: &Services, id: InboundEventId) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = process_event(&s, id).await {
            tracing::warn!(error = %e, event = %id, "WhatsApp webhook processing failed; the worker retries it");
        }
    });
}

/// The worker: processes whatever is left unprocessed, every `every`.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic(
        "WhatsApp inbound processing round failed",
        every,
        None,
        move || {
            let s = s.clone();
            async move { process_pending(&s).await.map(|_| Next::Wait) }
        },
    )
}

/// Processes every unprocessed event (oldest first). Returns how many were processed.
pub async fn process_pending(s: &Services) -> AppResult<usize> {
    let mut done = 0;
    let mut skipped: HashSet<InboundEventId> = HashSet::new();
    loop {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("whatsapp.inbound.pending"))
            .await?;
        let ids =
            store::pending(&mut tx, BATCH + i64::try_from(skipped.len()).unwrap_or(0)).await?;
        drop(tx);
        let ids: Vec<InboundEventId> = ids.into_iter().filter(|id| !skipped.contains(id)).collect();
        if ids.is_empty() {
            return Ok(done);
        }
        for id in ids {
            match process_event(s, id).await {
                Ok(true) => done += 1,
                // Locked by another processor, or retried later.
                Ok(false) | Err(_) => {
                    skipped.insert(id);
                }
            }
        }
    }
}

/// Processes one stored event. `Ok(false)` when it was already processed, is being processed
/// elsewhere, or failed on the database (recorded; retried up to a limit).
pub async fn process_event(s: &Services, id: InboundEventId) -> AppResult<bool> {
    let mut uow = inbound_work(s, "whatsapp.inbound.process").await?;
    let now = uow.now();
    let Some(event) = store::claim(uow.tx(), id).await? else {
        return Ok(false);
    };
    let error = match process_in(&mut uow, std::slice::from_ref(&event)).await {
        Ok(mut errors) => errors.pop().flatten(),
        Err(e) => {
            // A database failure: roll back and count the attempt.
            drop(uow);
            let mut uow = inbound_work(s, "whatsapp.inbound.process").await?;
            let attempts = store::record_attempt(uow.tx(), id, &e.to_string()).await?;
            if attempts >= MAX_ATTEMPTS {
                store::finish(uow.tx(), id, now, Some(format!("gave up: {e}"))).await?;
            }
            uow.commit().await?;
            tracing::warn!(error = %e, event = %id, attempts, "WhatsApp webhook processing failed");
            return Ok(false);
        }
    };
    store::finish(uow.tx(), id, now, error).await?;
    uow.commit().await?;
    Ok(true)
}
