//! The operator's metrics: every name Palisade exports, the one-line increments the services
//! call where something countable happens, and the gauges sampled when `/metrics` is scraped.
//!
//! Threat: a label value taken from a request (a tenant or user id, an email, an address, a raw
//! path) would leak who uses the server to whoever reads the metrics, and would let a client
//! grow the exporter's memory without bound by sending new values. Invariant: every label value
//! here is a `&'static str` chosen by this code (a result, a queue, a state); the only other one,
//! the HTTP route, is a template of the router (`/api/v1/contacts/{id}`), never the path.
//!
//! The calls go through the `metrics` facade: without an installed recorder (metrics off, the
//! default) they do nothing. The recorder is installed once per process by the binary
//! (`palisade_web::metrics::install`); counters are therefore per process, not per tenant.
//! docs/operations.md lists every metric with its meaning.

use crate::Services;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use palisade_domain::LoginResult;
use palisade_store::SystemScope;

pub const HTTP_REQUESTS: &str = "palisade_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "palisade_http_request_duration_seconds";
pub const HTTP_SLOW_REQUESTS: &str = "palisade_http_slow_requests_total";
pub const AUTH_LOGINS: &str = "palisade_auth_logins_total";
pub const AUTH_LOCKOUTS: &str = "palisade_auth_lockouts_total";
pub const WEBHOOK_DELIVERIES: &str = "palisade_webhook_deliveries_total";
pub const INBOUND_EVENTS: &str = "palisade_inbound_events_total";
pub const QUEUE_DEPTH: &str = "palisade_queue_depth";
pub const WEBSOCKET_CONNECTIONS: &str = "palisade_websocket_connections";
pub const DB_POOL_CONNECTIONS: &str = "palisade_db_pool_connections";
pub const SECURITY_ALERTS: &str = "palisade_security_alerts_total";
pub const BACKUP_LAST_SUCCESS: &str = "palisade_backup_last_success_timestamp_seconds";
pub const REDIS_FALLBACKS: &str = "palisade_redis_fallbacks_total";
pub const BACKUP_FAILURES: &str = "palisade_backup_failures_total";

/// The route label of a request no route matched (a 404 from the fallback): one value for
/// every such path, so scanning random URLs adds no series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Gives every metric its help text (the `# HELP` line). Called once, when the recorder is
/// installed; the security alert and backup metrics are described before anything sets them.
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time from the request reaching the router to its response, by method and route template."
    );
    describe_counter!(
        HTTP_SLOW_REQUESTS,
        "Requests slower than PALISADE_SLOW_REQUEST_MS, by route template."
    );
    describe_counter!(
        AUTH_LOGINS,
        "Sign-in attempts by result: success, failure (wrong password or passkey), locked (refused during a lockout), mfa_failure (wrong second factor)."
    );
    describe_counter!(
        AUTH_LOCKOUTS,
        "Accounts locked after repeated failed sign-ins."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Outgoing webhook delivery attempts by result: delivered, failed (retried or given up), gone (410, endpoint disabled)."
    );
    describe_counter!(
        INBOUND_EVENTS,
        "WhatsApp webhook POSTs from Meta by result: accepted (signed and stored), refused (401), rate_limited (429)."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Rows waiting in each durable queue across tenants (due or awaiting a retry), counted at scrape time."
    );
    describe_gauge!(WEBSOCKET_CONNECTIONS, "Websockets open on this node.");
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database connections of this node by state: active (in use) or idle."
    );
    describe_counter!(
        SECURITY_ALERTS,
        "Security alerts opened, by rule and severity."
    );
    describe_gauge!(
        BACKUP_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the platform's last successful backup (scheduled or palisade backup create), read from the platform audit chain at scrape time, so every node reports it; 0 until one succeeds."
    );
    describe_counter!(
        REDIS_FALLBACKS,
        "Rate-limit decisions made by this node's in-process limit because Redis (PALISADE_REDIS_URL) did not answer, by limit."
    );
    describe_counter!(
        BACKUP_FAILURES,
        "Scheduled backups that need attention, by reason: failed (no archive), verification_failed (the archive does not verify), missed (started more than 15 minutes late)."
    );
    zero();
}

/// Every counter with a fixed set of label values starts at 0, so that a fresh node's first
/// scrape already lists each series (a rate over a counter that appears only with its first
/// event misses that event, and a dashboard or an acceptance check looking for the name finds
/// nothing). The HTTP metrics are left out: their routes appear with their first request.
fn zero() {
    for result in LoginResult::ALL {
        counter!(AUTH_LOGINS, "result" => result.as_str()).absolute(0);
    }
    counter!(AUTH_LOCKOUTS).absolute(0);
    for rule in palisade_domain::AlertRule::ALL {
        for severity in palisade_domain::AlertSeverity::ALL {
            counter!(SECURITY_ALERTS, "rule" => rule.as_str(), "severity" => severity.as_str())
                .absolute(0);
        }
    }
    for result in WEBHOOK_DELIVERY_RESULTS {
        counter!(WEBHOOK_DELIVERIES, "result" => result).absolute(0);
    }
    for result in INBOUND_EVENT_RESULTS {
        counter!(INBOUND_EVENTS, "result" => result).absolute(0);
    }
    for reason in BACKUP_FAILURE_REASONS {
        counter!(BACKUP_FAILURES, "reason" => reason).absolute(0);
    }
    gauge!(BACKUP_LAST_SUCCESS).set(0.0);
}

/// The `result` values of [`WEBHOOK_DELIVERIES`] (the only ones [`webhook_delivery`] takes:
/// checked in debug builds, so the tests catch a call site with another word). Likewise below.
pub const WEBHOOK_DELIVERY_RESULTS: [&str; 3] = ["delivered", "failed", "gone"];
/// The `result` values of [`INBOUND_EVENTS`].
pub const INBOUND_EVENT_RESULTS: [&str; 3] = ["accepted", "refused", "rate_limited"];
/// The `reason` values of [`BACKUP_FAILURES`].
pub const BACKUP_FAILURE_REASONS: [&str; 3] = ["failed", "verification_failed", "missed"];

/// A rate limit was decided in-process because Redis did not answer; `limit` is the limit's
/// fixed name (`login`, `api`, …).
pub fn redis_fallback(limit: &'static str) {
    counter!(REDIS_FALLBACKS, "limit" => limit).increment(1);
}

/// A scheduled backup was written at `at`.
pub fn backup_succeeded(at: time::OffsetDateTime) {
    gauge!(BACKUP_LAST_SUCCESS).set(at.unix_timestamp() as f64);
}

/// A scheduled backup needs attention for `reason` (`failed`, `verification_failed`, `missed`).
pub fn backup_failed(reason: &'static str) {
    debug_assert!(BACKUP_FAILURE_REASONS.contains(&reason), "{reason}");
    counter!(BACKUP_FAILURES, "reason" => reason).increment(1);
}

/// A sign-in attempt decided with `result`.
pub fn login(result: LoginResult) {
    counter!(AUTH_LOGINS, "result" => result.as_str()).increment(1);
}

/// An account locked by the failure that reached the threshold.
pub fn lockout() {
    counter!(AUTH_LOCKOUTS).increment(1);
}

/// A security alert opened (a repeat that bumps an open alert is not counted again).
pub fn security_alert(rule: palisade_domain::AlertRule, severity: palisade_domain::AlertSeverity) {
    counter!(SECURITY_ALERTS, "rule" => rule.as_str(), "severity" => severity.as_str())
        .increment(1);
}

/// An outgoing webhook delivery attempt ended with `result` (`delivered`, `failed`, `gone`).
pub fn webhook_delivery(result: &'static str) {
    debug_assert!(WEBHOOK_DELIVERY_RESULTS.contains(&result), "{result}");
    counter!(WEBHOOK_DELIVERIES, "result" => result).increment(1);
}

/// A WhatsApp webhook POST from Meta was `accepted`, `refused` or `rate_limited`.
pub fn inbound_event(result: &'static str) {
    debug_assert!(INBOUND_EVENT_RESULTS.contains(&result), "{result}");
    counter!(INBOUND_EVENTS, "result" => result).increment(1);
}

/// Sets the gauges read from the database and this node's state: the queue depths (one
/// statement of indexed counts), the pool's connections and the open websockets. Called at
/// scrape time, so the values are never older than the scrape.
pub async fn sample(s: &Services) -> crate::AppResult<()> {
    let (depths, last_backup) = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("metrics.sample"))
            .await?;
        // The last backup of the platform, whichever node (or command) took it.
        let last_backup =
            palisade_store::audit::last_platform_action(&mut tx, "platform.backup.created").await?;
        (palisade_store::queues::depths(&mut tx).await?, last_backup)
    };
    for (queue, n) in depths.labelled() {
        gauge!(QUEUE_DEPTH, "queue" => queue).set(n as f64);
    }
    // Read after the query, which has returned its connection by now.
    let pool = s.store.pool_connections();
    gauge!(DB_POOL_CONNECTIONS, "state" => "active").set(pool.active as f64);
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(pool.idle as f64);
    gauge!(WEBSOCKET_CONNECTIONS).set(s.realtime.open_sockets() as f64);
    if let Some(at) = last_backup {
        gauge!(BACKUP_LAST_SUCCESS).set(at.unix_timestamp() as f64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::MetricKind;

    /// A counter as a test reads it: name, labels, value.
    type Counted = (String, Vec<(String, String)>, u64);

    /// The counters a closure increments, read from a recorder of its own (so tests running at
    /// once never see each other's counts).
    fn counted(f: impl FnOnce()) -> Vec<Counted> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        let mut out: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match (key.kind(), value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    let (_, k) = key.into_parts();
                    let labels = k
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect();
                    Some((k.name().to_owned(), labels, n))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    fn label(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_owned(), v.to_owned())]
    }

    #[test]
    fn sign_ins_are_counted_by_result_and_lockouts_on_their_own() {
        let got = counted(|| {
            login(LoginResult::Failure);
            login(LoginResult::Failure);
            login(LoginResult::Success);
            login(LoginResult::MfaFailure);
            lockout();
        });
        assert_eq!(
            got,
            vec![
                (AUTH_LOCKOUTS.to_owned(), vec![], 1),
                (AUTH_LOGINS.to_owned(), label("result", "failure"), 2),
                (AUTH_LOGINS.to_owned(), label("result", "mfa_failure"), 1),
                (AUTH_LOGINS.to_owned(), label("result", "success"), 1),
            ]
        );
    }

    #[test]
    fn deliveries_and_inbound_posts_are_counted_by_result() {
        let got = counted(|| {
            webhook_delivery("delivered");
            webhook_delivery("failed");
            webhook_delivery("failed");
            inbound_event("accepted");
            inbound_event("refused");
        });
        assert_eq!(
            got,
            vec![
                (INBOUND_EVENTS.to_owned(), label("result", "accepted"), 1),
                (INBOUND_EVENTS.to_owned(), label("result", "refused"), 1),
                (
                    WEBHOOK_DELIVERIES.to_owned(),
                    label("result", "delivered"),
                    1
                ),
                (WEBHOOK_DELIVERIES.to_owned(), label("result", "failed"), 2),
            ]
        );
    }
}
