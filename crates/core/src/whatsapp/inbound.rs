//! Meta's webhook POSTs: verify, store durably with their effects, acknowledge.
//!
//! [`admit`] refuses a POST for an unknown or disconnected connection before its body is read;
//! [`receive`] then authenticates the request (HMAC-SHA256 of the exact bytes with the
//! connection's app secret, compared in constant time, before any parsing) and hands the body
//! to this node's [`Pipeline`]. Refusals are limited per client address (`429` past
//! `PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE`, counting refusals only, so Meta's
//! correctly signed bursts always pass) and recorded once per connection and minute
//! ([`super::webhook_refusals`]).
//!
//! One task takes whatever POSTs are waiting (up to [`BATCH_EVENTS`]) and, in one transaction,
//! stores each body verbatim in `whatsapp_inbound_events` together with what it means:
//! contacts, conversations, messages, status changes, consent keywords and media jobs. The
//! handler answers 200 only after that commit, so the acknowledgement always follows
//! a durable write, and under load many POSTs share one commit (one writer pass on SQLite
//! instead of a store, a claim and a finish per POST).
//!
//! When a batch fails on the database, its bodies are stored unprocessed in a second
//! transaction (still before the 200) and processed one by one ([`process_event`]); a worker on
//! every node ([`spawn_worker`]) picks up whatever is left unprocessed (a crash loses nothing,
//! and a poisonous body cannot block the others: its attempts are counted and it is given up).
//!
//! Processing turns every change of a (possibly batched) payload into contacts, conversations
//! and messages. It is idempotent: a message is keyed by its wamid per connection, so Meta's
//! redeliveries and duplicates change nothing; statuses only move a message forward
//! (`sent → delivered → read`, or `failed` with Meta's error), never back. Media messages
//! get a download job in the same transaction (`whatsapp::media`), and nothing is sent.

use super::connections::secret_aad;
use super::webhook_refusals;
use crate::auth::RequestMeta;
use crate::rate_limit::ClientKey;
use crate::worker::Next;
use crate::{AppError, AppResult, Services};
use hmac::{Hmac, Mac};
use palisade_domain::TenantId;
use palisade_store::messaging::{self, Message, NewMessage};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::whatsapp_inbound::{self as store, InboundEvent};
use palisade_store::{SystemScope, Tx};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Meta sends up to 3 MB per POST.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// A processing attempt that fails on the database is retried this many times in all.
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

/// A connection a webhook POST may be delivered to, found by [`admit`] before the body is read.
pub struct Admitted {
    conn: Connection,
}

/// The first step of a webhook POST, taken before its body is read: the connection must exist
/// and be active. Anything else is refused at once, so a stranger cannot make this node read
/// megabytes for a made-up id. The lookup is cached for [`CONNECTION_TTL`] for active
/// connections, so Meta's bursts cost no query each.
///
/// Refusals count against the client address's failure budget (`webhook_failures`): `401`
/// (`unknown_connection`, `connection_disconnected`) within it, `429 rate_limited` with a wait
/// beyond it. A disconnected connection's refusals are recorded in its tenant's audit log, one
/// record per minute ([`super::webhook_refusals`]); made-up ids are only traced.
pub async fn admit(s: &Services, meta: &RequestMeta, connection_id: Uuid) -> AppResult<Admitted> {
    let conn = match s.inbound.cached(connection_id) {
        Some(c) => Some(c),
        None => {
            let mut tx = s
                .store
                .begin_read(SystemScope::new("whatsapp.webhook.receive"))
                .await?;
            let found = connections::find_any(&mut tx, connection_id).await?;
            drop(tx);
            if let Some(c) = found.as_ref().filter(|c| c.status == "active") {
                s.inbound.remember(c);
            }
            found
        }
    };
    match conn {
        None => Err(refuse(
            s,
            meta,
            None,
            connection_id,
            0,
            "unknown_connection",
            "no such WhatsApp connection",
        )
        .await),
        Some(c) if c.status != "active" => Err(refuse(
            s,
            meta,
            Some(&c),
            connection_id,
            0,
            "connection_disconnected",
            "this WhatsApp connection is disconnected",
        )
        .await),
        Some(conn) => Ok(Admitted { conn }),
    }
}

/// Verifies a webhook POST for an [`admit`]ted connection, then stores and processes it (see the
/// module docs). Returns the stored event's id once it is committed. A missing or wrong
/// signature is refused like [`admit`]'s refusals (401, or 429 past the address's failure
/// budget) and counted in the connection's per-minute security record. A correctly signed POST
/// is never limited, whatever its address did before: the signature is checked first.
pub async fn receive(
    s: &Services,
    meta: &RequestMeta,
    admitted: Admitted,
    signature: Option<&str>,
    body: Vec<u8>,
) -> AppResult<Uuid> {
    let conn = admitted.conn;
    let refusal = match signature {
        None => Some(("signature_missing", "X-Hub-Signature-256 is required")),
        Some(signature) => {
            let secret = s
                .keys
                .encryption
                .decrypt(
                    &conn.app_secret_ciphertext,
                    &secret_aad(&conn, "app_secret"),
                )
                .map_err(|e| anyhow::anyhow!("app secret of connection {}: {e:?}", conn.id))?;
            (!signature_valid(&secret, signature, &body)).then_some((
                "signature_invalid",
                "X-Hub-Signature-256 does not match the body",
            ))
        }
    };
    if let Some((code, message)) = refusal {
        return Err(refuse(s, meta, Some(&conn), conn.id, body.len(), code, message).await);
    }
    let event = InboundEvent {
        id: Uuid::now_v7(),
        tenant_id: conn.tenant_id,
        connection_id: conn.id,
        body,
        received_at: s.now(),
        processed_at: None,
        attempts: 0,
        error: None,
    };
    let id = event.id;
    s.inbound.submit(s, event).await?;
    Ok(id)
}

/// Counts a refused POST against its address's failure budget and, for a real connection, in
/// its per-minute security record; returns the answer: 401 `code`, or 429 past the budget.
async fn refuse(
    s: &Services,
    meta: &RequestMeta,
    conn: Option<&Connection>,
    connection_id: Uuid,
    body_bytes: usize,
    code: &'static str,
    message: &str,
) -> AppError {
    let wait = meta
        .ip
        .and_then(|ip| s.limits.webhook_failures.check(&ClientKey::of(ip)).err());
    if let Some(c) = conn {
        webhook_refusals::record(
            s,
            &webhook_refusals::Refusal {
                meta,
                connection_id: c.id,
                tenant_id: c.tenant_id,
                reason: code,
                body_bytes,
                rate_limited: wait.is_some(),
            },
        )
        .await;
    }
    match wait {
        Some(retry_after_secs) => {
            // Past the budget, refusals are only counted: a flood must not fill the logs.
            tracing::debug!(%connection_id, reason = code, "WhatsApp webhook refused (rate limited)");
            AppError::rate_limited(
                "too many refused webhook deliveries from your address; correctly signed deliveries are still accepted",
                retry_after_secs,
            )
        }
        None => {
            tracing::warn!(%connection_id, reason = code, "WhatsApp webhook refused");
            AppError::Unauthenticated {
                code,
                message: message.into(),
            }
        }
    }
}

/// `header` is `sha256=<lowercase hex HMAC-SHA256(secret, body)>`; compared in constant time.
pub fn signature_valid(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A verified POST waiting for the pipeline, and where to report its commit.
struct Job {
    event: InboundEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// This node's ingest pipeline (see the module docs): verified POSTs queue here, and the task
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
    connections: Mutex<HashMap<Uuid, (Instant, Connection)>>,
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
    fn cached(&self, id: Uuid) -> Option<Connection> {
        lock(&self.connections)
            .get(&id)
            .filter(|(at, _)| at.elapsed() < CONNECTION_TTL)
            .map(|(_, c)| c.clone())
    }

    fn remember(&self, c: &Connection) {
        let mut map = lock(&self.connections);
        if map.len() >= 1024 {
            map.retain(|_, (at, _)| at.elapsed() < CONNECTION_TTL);
        }
        map.insert(c.id, (Instant::now(), c.clone()));
    }

    /// Forgets a connection that was disconnected or deleted (call after the commit).
    pub fn forget(&self, id: Uuid) {
        lock(&self.connections).remove(&id);
    }

    /// Stores and processes one verified POST; returns once it is committed.
    async fn submit(&self, s: &Services, event: InboundEvent) -> AppResult<()> {
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

/// Stores and processes `events` in one transaction, then runs their follow-ups. If that fails
/// on the database, stores them unprocessed instead (and starts processing each on its own);
/// an error means none was stored.
async fn store_batch(s: &Services, mut events: Vec<InboundEvent>) -> AppResult<()> {
    let now = s.now();
    match process_batch(s, &mut events, now).await {
        Ok(applied) => {
            after_commit(s, &applied);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, events = events.len(),
                "processing a batch of WhatsApp webhooks failed; stored for one-by-one processing");
            let mut tx = s
                .store
                .begin(SystemScope::new("whatsapp.webhook.receive"))
                .await?;
            for event in &mut events {
                event.processed_at = None;
                event.attempts = 0;
                event.error = None;
            }
            store::insert_all(&mut tx, &events).await?;
            tx.commit().await?;
            for event in &events {
                spawn_process(s, event.id);
            }
            Ok(())
        }
    }
}

async fn process_batch(
    s: &Services,
    events: &mut [InboundEvent],
    now: OffsetDateTime,
) -> palisade_store::Result<Applied> {
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.inbound.process"))
        .await?;
    let (errors, applied) = process_in(s, &mut tx, events, now).await?;
    for (event, error) in events.iter_mut().zip(errors) {
        event.processed_at = Some(now);
        event.attempts = 1;
        event.error = error;
    }
    store::insert_all(&mut tx, events).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Spawns the processing of one stored, unprocessed event.
pub fn spawn_process(s: &Services, id: Uuid) {
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
    let mut skipped: HashSet<Uuid> = HashSet::new();
    loop {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("whatsapp.inbound.pending"))
            .await?;
        let ids =
            store::pending(&mut tx, BATCH + i64::try_from(skipped.len()).unwrap_or(0)).await?;
        drop(tx);
        let ids: Vec<Uuid> = ids.into_iter().filter(|id| !skipped.contains(id)).collect();
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
pub async fn process_event(s: &Services, id: Uuid) -> AppResult<bool> {
    let now = s.now();
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.inbound.process"))
        .await?;
    let Some(event) = store::claim(&mut tx, id).await? else {
        return Ok(false);
    };
    let (error, applied) = match process_in(s, &mut tx, std::slice::from_ref(&event), now).await {
        Ok((mut errors, applied)) => (errors.pop().flatten(), applied),
        Err(e) => {
            // A database failure: roll back and count the attempt.
            drop(tx);
            let mut tx = s
                .store
                .begin(SystemScope::new("whatsapp.inbound.process"))
                .await?;
            let attempts = store::record_attempt(&mut tx, id, &e.to_string()).await?;
            if attempts >= MAX_ATTEMPTS {
                store::finish(&mut tx, id, now, Some(format!("gave up: {e}"))).await?;
            }
            tx.commit().await?;
            tracing::warn!(error = %e, event = %id, attempts, "WhatsApp webhook processing failed");
            return Ok(false);
        }
    };
    store::finish(&mut tx, id, now, error).await?;
    tx.commit().await?;
    after_commit(s, &applied);
    Ok(true)
}

/// Applies `events` in `tx`, all at once (see [`Batch`]), and reads the realtime events of
/// what changed. Returns, per event, the note to keep in its `error` (what was skipped, or why
/// it could not be processed at all), and the changes; a database error aborts the
/// transaction.
async fn process_in(
    s: &Services,
    tx: &mut Tx<SystemScope>,
    events: &[InboundEvent],
    now: OffsetDateTime,
) -> palisade_store::Result<(Vec<Option<String>>, Applied)> {
    let payloads: Vec<Result<Value, String>> = events
        .iter()
        .map(|e| {
            serde_json::from_slice::<Value>(&e.body)
                .map_err(|e| format!("the body is not JSON: {e}"))
        })
        .collect();
    let mut connections: HashMap<Uuid, Option<Connection>> = HashMap::new();
    for e in events {
        if let std::collections::hash_map::Entry::Vacant(slot) = connections.entry(e.connection_id)
        {
            slot.insert(connections::find_any(tx, e.connection_id).await?);
        }
    }
    let mut batch = Batch::default();
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); events.len()];
    for (i, ((event, payload), notes)) in events.iter().zip(&payloads).zip(&mut notes).enumerate() {
        let conn = connections
            .get(&event.connection_id)
            .and_then(Option::as_ref);
        match (payload, conn) {
            (Err(why), _) => notes.push(why.clone()),
            (Ok(_), None) => notes.push("the connection no longer exists".to_owned()),
            (Ok(payload), Some(conn)) => batch.parse(i, conn, payload, notes),
        }
    }
    let applied = batch.apply(s, tx, &connections, now, &mut notes).await?;
    let errors = notes
        .into_iter()
        .zip(events)
        .map(|(n, event)| {
            (!n.is_empty()).then(|| {
                let why = n.join("; ");
                tracing::warn!(event = %event.id, error = %why, "WhatsApp webhook not (entirely) processed");
                why
            })
        })
        .collect();
    Ok((errors, applied))
}

/// What processing stored events changed: the input of the follow-ups that run after the
/// transaction commits (in [`after_commit`]).
#[derive(Debug, Default)]
pub struct Applied {
    /// Inbound messages stored (redeliveries excluded).
    pub messages: Vec<NewMessage>,
    /// Realtime events of what changed, read in the transaction.
    pub events: Vec<crate::realtime::Event>,
}

/// Follow-ups of committed events that need no transaction.
fn after_commit(s: &Services, applied: &Applied) {
    super::media::after_commit(s, &applied.messages);
    s.realtime.publish_all(&applied.events);
}

/// A customer message found in a payload, checked, waiting to be stored.
struct Incoming<'a> {
    /// Index of its event in the batch (for notes).
    event: usize,
    message: &'a Value,
    wamid: &'a str,
    from: &'a str,
    profile: Option<&'a str>,
    sent_at: Option<OffsetDateTime>,
}

/// A status found in a payload.
struct StatusChange<'a> {
    wamid: &'a str,
    status: &'a str,
    error: Option<Value>,
}

/// The changes of every event of a batch, grouped by (tenant, connection), so that each group
/// is written with a few multi-row statements however many POSTs it came in, and rows are
/// locked in one order (tenants, connections, then phones and contacts sorted), which keeps
/// concurrent processors (other nodes) from deadlocking each other.
#[derive(Default)]
struct Batch<'a> {
    messages: BTreeMap<(TenantId, Uuid), Vec<Incoming<'a>>>,
    statuses: BTreeMap<(TenantId, Uuid), Vec<StatusChange<'a>>>,
}

impl<'a> Batch<'a> {
    /// Collects the messages and statuses of one payload; what is skipped goes to `notes`.
    fn parse(
        &mut self,
        event: usize,
        conn: &Connection,
        payload: &'a Value,
        notes: &mut Vec<String>,
    ) {
        if payload.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
            notes.push("object is not whatsapp_business_account".to_owned());
            return;
        }
        let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
            notes.push("no entry array".to_owned());
            return;
        };
        let key = (conn.tenant_id, conn.id);
        for (ei, entry) in entries.iter().enumerate() {
            let changes = entry
                .get("changes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (ci, change) in changes.iter().enumerate() {
                let at = format!("entry[{ei}].changes[{ci}]");
                let field = change.get("field").and_then(Value::as_str).unwrap_or("");
                if field != "messages" {
                    tracing::debug!(field, "WhatsApp webhook field not handled yet");
                    continue;
                }
                let Some(value) = change.get("value") else {
                    notes.push(format!("{at}: no value"));
                    continue;
                };
                let pid = value
                    .pointer("/metadata/phone_number_id")
                    .and_then(Value::as_str);
                if pid != Some(conn.phone_number_id.as_str()) {
                    notes.push(format!("{at}: for another phone number id, skipped"));
                    continue;
                }
                let messages = incoming(event, value, &at, notes);
                self.messages.entry(key).or_default().extend(messages);
                let statuses = status_changes(value, &at, notes);
                self.statuses.entry(key).or_default().extend(statuses);
                if let Some(errors) = value.get("errors") {
                    tracing::warn!(connection = %conn.id, %errors, "WhatsApp reported errors");
                }
            }
        }
    }

    /// Writes the batch: per (tenant, connection), the new messages with their contacts and
    /// conversations, then the statuses; then consent keywords and media jobs of the new
    /// messages; then reads the realtime events.
    async fn apply(
        self,
        s: &Services,
        tx: &mut Tx<SystemScope>,
        connections: &HashMap<Uuid, Option<Connection>>,
        now: OffsetDateTime,
        notes: &mut [Vec<String>],
    ) -> palisade_store::Result<Applied> {
        let mut applied = Applied::default();
        // Per (tenant, connection): the new messages, their rows as stored, and the (wamid,
        // status) that moved.
        type Changes = (Vec<NewMessage>, Vec<Message>, Vec<(String, String)>);
        let mut new_contacts: BTreeMap<TenantId, Vec<Uuid>> = BTreeMap::new();
        let mut by_group: BTreeMap<(TenantId, Uuid), Changes> = BTreeMap::new();
        for ((tenant, conn_id), list) in self.messages {
            let Some(conn) = connections.get(&conn_id).and_then(Option::as_ref) else {
                continue;
            };
            let (new, stored, created) = store_messages(tx, tenant, conn, list, now, notes).await?;
            new_contacts.entry(tenant).or_default().extend(created);
            let group = by_group.entry((tenant, conn_id)).or_default();
            group.0 = new;
            group.1 = stored;
        }
        for ((tenant, conn_id), list) in self.statuses {
            let mut moved = Vec::new();
            for st in list {
                let changed = messaging::advance_status(
                    tx, tenant, conn_id, st.wamid, st.status, st.error, now,
                )
                .await?;
                if changed {
                    moved.push((st.wamid.to_owned(), st.status.to_owned()));
                } else {
                    tracing::debug!(
                        wamid = st.wamid,
                        status = st.status,
                        "status for an unknown message or not newer"
                    );
                }
            }
            by_group.entry((tenant, conn_id)).or_default().2 = moved;
        }
        for ((tenant, conn_id), (messages, stored, statuses)) in by_group {
            let events =
                crate::realtime::inbound_events(s, tx, tenant, conn_id, stored, &statuses).await?;
            applied.events.extend(events);
            applied.messages.extend(messages);
        }
        for (tenant, created) in new_contacts {
            crate::contacts::announce_created(tx, tenant, &created, now).await?;
        }
        crate::contacts::apply_consent_keywords(tx, &s.settings, &applied.messages, now).await?;
        super::media::enqueue_downloads(tx, &applied.messages).await?;
        Ok(applied)
    }
}

fn unix_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    let secs = match v? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The well-formed messages of a change `value` (those without an id or a phone-number sender
/// are noted and skipped), with their sender's WhatsApp profile name.
fn incoming<'a>(
    event: usize,
    value: &'a Value,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<Incoming<'a>> {
    let Some(list) = value.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
    let profiles: HashMap<&str, &str> = value
        .get("contacts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            Some((
                c.get("wa_id")?.as_str()?,
                c.pointer("/profile/name")?.as_str()?,
            ))
        })
        .collect();
    let mut out = Vec::with_capacity(list.len());
    for (mi, m) in list.iter().enumerate() {
        let (Some(wamid), Some(from)) = (
            m.get("id").and_then(Value::as_str),
            m.get("from").and_then(Value::as_str),
        ) else {
            notes.push(format!("{at}.messages[{mi}]: no id or from, skipped"));
            continue;
        };
        if from.len() < 5 || from.len() > 15 || !from.bytes().all(|b| b.is_ascii_digit()) {
            notes.push(format!(
                "{at}.messages[{mi}]: from is not a phone number, skipped"
            ));
            continue;
        }
        let profile = profiles.get(from).copied().or_else(|| {
            // `from` and `wa_id` "may not always match"; with one contact, it is theirs.
            (profiles.len() == 1)
                .then(|| profiles.values().next().copied())
                .flatten()
        });
        out.push(Incoming {
            event,
            message: m,
            wamid,
            from,
            profile,
            sent_at: unix_time(m.get("timestamp")),
        });
    }
    out
}

/// The statuses of a change `value` that can move a message (`played` and future values are
/// ignored; entries without an id or status are noted and skipped).
fn status_changes<'a>(
    value: &'a Value,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<StatusChange<'a>> {
    let Some(list) = value.get("statuses").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (si, st) in list.iter().enumerate() {
        let (Some(wamid), Some(status)) = (
            st.get("id").and_then(Value::as_str),
            st.get("status").and_then(Value::as_str),
        ) else {
            notes.push(format!("{at}.statuses[{si}]: no id or status, skipped"));
            continue;
        };
        if messaging::status_rank(status).is_none() {
            continue;
        }
        let error = (status == "failed")
            .then(|| st.get("errors").cloned())
            .flatten();
        out.push(StatusChange {
            wamid,
            status,
            error,
        });
    }
    out
}

/// Stores the new messages of one (tenant, connection): those whose wamid the connection does
/// not have yet (redeliveries and repeats change nothing), with their contacts and
/// conversations, in a few multi-row statements. Returns the new messages, their rows as
/// stored, and the contacts created.
async fn store_messages(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    conn: &Connection,
    list: Vec<Incoming<'_>>,
    now: OffsetDateTime,
    notes: &mut [Vec<String>],
) -> palisade_store::Result<(Vec<NewMessage>, Vec<Message>, Vec<Uuid>)> {
    let wamids: Vec<String> = list.iter().map(|m| m.wamid.to_owned()).collect();
    let mut seen = messaging::existing_wamids(tx, tenant, conn.id, &wamids).await?;
    let mut accepted: Vec<Incoming<'_>> = Vec::with_capacity(list.len());
    let mut senders: HashMap<&str, messaging::Sender> = HashMap::new();
    for m in list {
        if !seen.insert(m.wamid.to_owned()) {
            continue; // already stored (redelivery) or repeated in this batch
        }
        let sender = senders.entry(m.from).or_insert_with(|| messaging::Sender {
            phone: format!("+{}", m.from),
            wa_id: m.from.to_owned(),
            profile_name: None,
        });
        // The latest payload's profile name wins.
        if let Some(p) = m.profile {
            sender.profile_name = Some(p.to_owned());
        }
        accepted.push(m);
    }
    if accepted.is_empty() {
        return Ok((Vec::new(), Vec::new(), Vec::new()));
    }
    let senders: Vec<messaging::Sender> = senders.into_values().collect();
    let messaging::UpsertedContacts {
        ids: contacts,
        created,
    } = messaging::upsert_contacts(tx, tenant, &senders, now).await?;
    let mut latest: HashMap<Uuid, OffsetDateTime> = HashMap::new();
    for m in &accepted {
        if let Some(contact) = contacts.get(&format!("+{}", m.from)) {
            let t = m.sent_at.unwrap_or(now);
            let e = latest.entry(*contact).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let conversations = messaging::touch_conversations(tx, tenant, conn.id, &latest, now).await?;
    let mut new = Vec::with_capacity(accepted.len());
    for m in accepted {
        let Some(conversation_id) = contacts
            .get(&format!("+{}", m.from))
            .and_then(|c| conversations.get(c))
            .copied()
        else {
            // Only if a concurrent erasure removed the contact between the statements.
            if let Some(n) = notes.get_mut(m.event) {
                n.push(format!(
                    "message {}: its contact vanished, skipped",
                    m.wamid
                ));
            }
            continue;
        };
        let kind = m
            .message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let text = (kind == "text")
            .then(|| m.message.pointer("/text/body").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        new.push(NewMessage {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            conversation_id,
            connection_id: conn.id,
            wamid: m.wamid.to_owned(),
            direction: "inbound",
            kind,
            body: m.message.clone(),
            text,
            status: "received",
            error: m.message.get("errors").cloned(),
            context_wamid: m
                .message
                .pointer("/context/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            sent_at: m.sent_at,
            created_at: now,
        });
    }
    let stored = messaging::insert_messages(tx, &new).await?;
    Ok((new, stored, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_test_vector_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
        assert!(signature_valid(b"test_app_secret", sig, body));
        assert!(!signature_valid(b"other", sig, body));
        assert!(!signature_valid(b"test_app_secret", &sig[7..], body));
        assert!(!signature_valid(b"test_app_secret", "sha256=zz", body));
    }
}
