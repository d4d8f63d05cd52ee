//! Refused webhook POSTs for a real connection, recorded as security events without letting a
//! flood write the audit log.
//!
//! Anyone can POST to a connection's callback URL, and the audit log is append-only and
//! hash-chained: one record per refused POST would let a stranger grow the tenant's chain
//! forever. So refusals (missing or wrong signature, disconnected connection) are counted in
//! memory per connection and per calendar minute of the service clock, and each minute becomes
//! **one** `whatsapp.webhook.signature_invalid` record in the connection's tenant chain, whose
//! metadata holds the `count`, the count per `reasons`, how many were answered `429`
//! (`rate_limited`), the first and last refusal's time, the refusing addresses with their counts
//! (at most [`MAX_ADDRESSES`], the rest summed in `addresses_not_listed`) and the bytes refused.
//! The record's ip, user agent and request id are those of the minute's first refusal.
//!
//! A minute's record is written at the first refusal of a later minute (before that request is
//! answered), or by the flusher ([`spawn_flusher`], every second) once the minute has ended,
//! and at shutdown for the minute in progress. A record that cannot be written (database down)
//! is kept and retried by the flusher, with an error logged each time; only if more than
//! [`MAX_UNWRITTEN`] records are waiting is the oldest dropped, and that is logged as an error
//! with its count. So every refusal ends up in the audit log or in an error log line, except
//! those of the minute in progress when the process is killed without a graceful shutdown.
//!
//! Each node counts its own refusals: with several nodes, a minute gives at most one record per
//! connection per node. Made-up connection ids are never recorded (only traced): they name no
//! tenant, and counting them would let a stranger grow this map.

use crate::audit::AuditEntryExt;
use crate::auth::RequestMeta;
use crate::worker::Next;
use crate::{AppResult, Services, UnitOfWork};
use palisade_domain::{ConnectionId, TenantId};
use palisade_store::SystemScope;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// The audit action of a minute's refusals (the name of the per-request record it replaced).
pub const ACTION: &str = "whatsapp.webhook.signature_invalid";
/// Distinct refusing addresses listed in one record.
pub const MAX_ADDRESSES: usize = 16;
/// Finished minutes waiting to be written (the database is down) before the oldest is dropped.
pub const MAX_UNWRITTEN: usize = 10_000;

/// One refusal, as the webhook route saw it.
pub struct Refusal<'a> {
    pub meta: &'a RequestMeta,
    pub connection_id: ConnectionId,
    pub tenant_id: TenantId,
    pub reason: &'static str,
    pub body_bytes: usize,
    /// Answered 429 because the address was over its failure budget.
    pub rate_limited: bool,
}

/// A connection's refusals in one minute.
#[derive(Debug, Clone)]
struct Window {
    connection_id: ConnectionId,
    tenant_id: TenantId,
    minute: i64,
    first: RequestMeta,
    first_at: OffsetDateTime,
    last_at: OffsetDateTime,
    count: u64,
    rate_limited: u64,
    reasons: BTreeMap<&'static str, u64>,
    addresses: BTreeMap<String, u64>,
    addresses_not_listed: u64,
    body_bytes: u64,
}

impl Window {
    fn new(r: &Refusal<'_>, minute: i64, now: OffsetDateTime) -> Self {
        Window {
            connection_id: r.connection_id,
            tenant_id: r.tenant_id,
            minute,
            first: r.meta.clone(),
            first_at: now,
            last_at: now,
            count: 0,
            rate_limited: 0,
            reasons: BTreeMap::new(),
            addresses: BTreeMap::new(),
            addresses_not_listed: 0,
            body_bytes: 0,
        }
    }

    fn add(&mut self, r: &Refusal<'_>, now: OffsetDateTime) {
        self.count += 1;
        self.rate_limited += u64::from(r.rate_limited);
        self.last_at = now;
        *self.reasons.entry(r.reason).or_default() += 1;
        let address = r
            .meta
            .ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let listed = self.addresses.len();
        match self.addresses.entry(address) {
            std::collections::btree_map::Entry::Occupied(mut n) => *n.get_mut() += 1,
            std::collections::btree_map::Entry::Vacant(slot) if listed < MAX_ADDRESSES => {
                slot.insert(1);
            }
            std::collections::btree_map::Entry::Vacant(_) => self.addresses_not_listed += 1,
        }
        self.body_bytes = self
            .body_bytes
            .saturating_add(u64::try_from(r.body_bytes).unwrap_or(u64::MAX));
    }

    fn metadata(&self) -> serde_json::Value {
        let at = palisade_domain::rfc3339;
        let start = OffsetDateTime::from_unix_timestamp(self.minute.saturating_mul(60))
            .map(at)
            .unwrap_or_default();
        serde_json::json!({
            "count": self.count,
            "reasons": self.reasons,
            "rate_limited": self.rate_limited,
            "minute_start": start,
            "first_at": at(self.first_at),
            "last_at": at(self.last_at),
            "addresses": self.addresses,
            "addresses_not_listed": self.addresses_not_listed,
            "body_bytes": self.body_bytes,
        })
    }
}

/// This node's refusal counts (lives in the inbound pipeline, see the module docs).
#[derive(Default)]
pub struct RefusalLog {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The minute being counted, per connection.
    open: HashMap<ConnectionId, Window>,
    /// Finished minutes not written yet.
    finished: Vec<Window>,
}

fn minute_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

impl RefusalLog {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `r`; returns the connection's previous minute when `r` is the first refusal of a
    /// later one (to be written now).
    fn note(&self, r: &Refusal<'_>, now: OffsetDateTime) -> Option<Window> {
        let minute = minute_of(now);
        let mut state = self.state();
        let finished = match state.open.get(&r.connection_id) {
            Some(w) if w.minute != minute => state.open.remove(&r.connection_id),
            _ => None,
        };
        state
            .open
            .entry(r.connection_id)
            .or_insert_with(|| Window::new(r, minute, now))
            .add(r, now);
        finished
    }

    /// Takes the minutes waiting to be written: the finished ones, those that ended before
    /// `now`, and with `all` also the ones in progress.
    fn take_due(&self, now: OffsetDateTime, all: bool) -> Vec<Window> {
        let minute = minute_of(now);
        let mut state = self.state();
        let mut due = std::mem::take(&mut state.finished);
        let ended: Vec<ConnectionId> = state
            .open
            .iter()
            .filter(|(_, w)| all || w.minute < minute)
            .map(|(id, _)| *id)
            .collect();
        due.extend(ended.iter().filter_map(|id| state.open.remove(id)));
        due
    }

    /// Keeps a minute whose record could not be written, for the next flush.
    fn keep_unwritten(&self, w: Window) {
        let mut state = self.state();
        if state.finished.len() >= MAX_UNWRITTEN {
            let dropped = state.finished.remove(0);
            tracing::error!(
                connection_id = %dropped.connection_id,
                tenant_id = %dropped.tenant_id.as_uuid(),
                count = dropped.count,
                "too many refused-webhook records waiting for the database; dropped the oldest"
            );
        }
        state.finished.push(w);
    }

    /// Refusals counted and not written yet (for tests and diagnostics).
    pub fn pending(&self) -> u64 {
        let state = self.state();
        state
            .open
            .values()
            .chain(state.finished.iter())
            .map(|w| w.count)
            .sum()
    }
}

/// Counts a refusal for a real connection; when it opens a new minute, writes the
/// connection's previous minute first (see the module docs).
pub async fn record(s: &Services, r: &Refusal<'_>) {
    if let Some(finished) = s.inbound.refusals.note(r, s.now()) {
        write_or_keep(s, finished).await;
    }
}

/// Writes the minutes that have ended (all of them, including the one in progress, with
/// `all`, as at shutdown). Returns how many records were written; a record that could not be
/// written is kept for the next call.
pub async fn flush(s: &Services, all: bool) -> usize {
    let mut written = 0;
    for w in s.inbound.refusals.take_due(s.now(), all) {
        written += usize::from(write_or_keep(s, w).await);
    }
    written
}

/// Writes finished minutes every `every` (see the module docs).
pub fn spawn_flusher(s: Services, every: Duration) -> tokio::task::JoinHandle<()> {
    // `flush` logs each record it could not write itself (and keeps it), so a round never fails.
    crate::worker::spawn_periodic(
        "recording refused WhatsApp webhooks failed",
        every,
        None,
        move || {
            let s = s.clone();
            async move {
                flush(&s, false).await;
                Ok::<_, std::convert::Infallible>(Next::Wait)
            }
        },
    )
}

async fn write_or_keep(s: &Services, w: Window) -> bool {
    match write(s, &w).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(
                error = %e,
                connection_id = %w.connection_id,
                count = w.count,
                "could not record refused WhatsApp webhooks; will retry"
            );
            s.inbound.refusals.keep_unwritten(w);
            false
        }
    }
}

async fn write(s: &Services, w: &Window) -> AppResult<()> {
    // Nobody is signed in on Meta's endpoint: the record carries the first refused request's
    // origin, with no actor, like a failed sign-in.
    let scope = SystemScope::new("whatsapp.webhook.refused");
    let mut uow = UnitOfWork::anonymous(s, &w.first, scope)
        .await?
        .for_tenant(w.tenant_id);
    let entry = uow
        .entry(ACTION)
        .target("whatsapp_connection", w.connection_id)
        .metadata(w.metadata());
    uow.audit(entry).await?;
    uow.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<'a>(meta: &'a RequestMeta, conn: ConnectionId, reason: &'static str) -> Refusal<'a> {
        Refusal {
            meta,
            connection_id: conn,
            tenant_id: TenantId::new(),
            reason,
            body_bytes: 10,
            rate_limited: false,
        }
    }

    #[test]
    fn a_minute_of_refusals_is_one_window_with_its_counts() {
        let log = RefusalLog::default();
        let conn = ConnectionId::new();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(); // a minute start
        let mut meta = RequestMeta::default();
        for i in 0..(MAX_ADDRESSES as u8 + 4) {
            meta.ip = Some(std::net::IpAddr::from([203, 0, 113, i]));
            let reason = if i % 2 == 0 {
                "signature_invalid"
            } else {
                "signature_missing"
            };
            let at = t0 + time::Duration::seconds(i64::from(i));
            assert!(log.note(&refusal(&meta, conn, reason), at).is_none());
        }
        assert_eq!(log.pending(), u64::from(MAX_ADDRESSES as u8 + 4));
        assert!(log
            .take_due(t0 + time::Duration::seconds(59), false)
            .is_empty());
        // The first refusal of the next minute hands the finished one over.
        let w = log
            .note(
                &refusal(&meta, conn, "signature_invalid"),
                t0 + time::Duration::seconds(60),
            )
            .unwrap();
        assert_eq!(w.count, u64::from(MAX_ADDRESSES as u8 + 4));
        let m = w.metadata();
        assert_eq!(m["reasons"]["signature_invalid"], 10);
        assert_eq!(m["reasons"]["signature_missing"], 10);
        assert_eq!(m["addresses"].as_object().unwrap().len(), MAX_ADDRESSES);
        assert_eq!(m["addresses_not_listed"], 4);
        assert_eq!(m["body_bytes"], 200);
        assert_eq!(w.first.ip, Some(std::net::IpAddr::from([203, 0, 113, 0])));
        // The new minute is due once it has ended, or at once when everything is flushed.
        assert!(log
            .take_due(t0 + time::Duration::seconds(119), false)
            .is_empty());
        assert_eq!(
            log.take_due(t0 + time::Duration::seconds(60), true).len(),
            1
        );
        assert_eq!(log.pending(), 0);
    }

    #[test]
    fn unwritten_minutes_wait_for_the_next_flush() {
        let log = RefusalLog::default();
        let meta = RequestMeta::default();
        let now = OffsetDateTime::now_utc();
        log.note(
            &refusal(&meta, ConnectionId::new(), "signature_invalid"),
            now,
        );
        let due = log.take_due(now, true);
        assert_eq!(due.len(), 1);
        for w in due {
            log.keep_unwritten(w);
        }
        assert_eq!(log.pending(), 1);
        assert_eq!(log.take_due(now, false).len(), 1, "retried even mid-minute");
    }
}
