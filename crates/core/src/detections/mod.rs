//! Security detections: rules that watch what Palisade already records (the audit log, the
//! login history, API key use, reads and exports) and raise alerts.
//!
//! Threat: an attack (password guessing, spraying, a stolen API key, data being drained) or a
//! risky change (a new admin, a powerful key, 2FA weakened) that nobody notices until it is too
//! late. Invariants:
//! - Rules are evaluated as the events happen: a unit of work that wrote a watched audit record
//!   hands it to [`evaluate`] once it has committed (a task on this node, so the request is not
//!   slowed); API key use and record reads are counted where they happen. An alert is raised
//!   within a second or two of the event that completes it, never in the request's transaction
//!   (a rule that fails must not fail the sign-in it watches).
//! - Counting rules read the database (the audit log), so their thresholds hold across nodes.
//!   The read-volume and export-size rules count in this node's memory (a stream is served by
//!   one node; docs/security.md says so).
//! - One unresolved alert per tenant (or platform), rule and subject: a repeat bumps
//!   `occurrences` (see `palisade_store::security_alerts::raise`). Delivery (metric, mail to the
//!   tenant's admins for high and critical, the tenant's `security.alert` webhook event, the
//!   platform's mail and webhook) happens when an alert opens, not on every repeat.
//!
//! Rule names, thresholds and settings: docs/security.md, "Detections and alerts".

pub mod api;
mod delivery;
pub mod geo;
mod rules;
pub mod webhook_outbox;

pub use api::{AlertView, SecurityMetricsView};
pub use delivery::{platform_mail_in, platform_webhook_in};
pub use rules::{api_key_used, export_started, exported_rows, records_read};
pub(crate) use rules::{login_failed, login_succeeded, unknown_name_failed};

use crate::audit::AuditEntryExt;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{AlertRule, AlertSeverity, AuditRecordId, TenantId};
use palisade_store::audit::AuditEntry;
use palisade_store::security_alerts::{self as store, NewAlert, SecurityAlert};
use palisade_store::SystemScope;
use std::time::Duration;

/// Thresholds and destinations, from the configuration (`PALISADE_DETECT_*`,
/// `PALISADE_SECURITY_ALERT_*`).
#[derive(Clone)]
pub struct DetectionSettings {
    /// Failed sign-ins of one account within `window` that raise `account_under_attack`.
    pub failed_logins: u32,
    /// Accounts one address fails against within `window` that raise `password_spraying`.
    pub spray_accounts: u32,
    /// The window of the sign-in rules and of the read-volume rule.
    pub window: Duration,
    /// Rows one export may have before it raises `mass_data_access`.
    pub export_rows: u64,
    /// Exports by one credential in an hour beyond which `mass_data_access` is raised.
    pub exports_per_hour: u32,
    /// Contacts and messages one credential may read through the API within `window`.
    pub read_records: u64,
    /// The platform's security mailbox (every alert, every tenant).
    pub alert_email: Option<String>,
    /// The platform's alert webhook (every alert, signed with `alert_webhook_secret`).
    pub alert_webhook: Option<String>,
    pub alert_webhook_secret: Option<secrecy::SecretString>,
    /// Speed between two successful sign-ins of one user above which `impossible_travel` is
    /// raised, km/h.
    pub travel_kmh: f64,
    /// How far back `new_country` looks for the user's countries.
    pub new_country_days: i64,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            failed_logins: 10,
            spray_accounts: 10,
            window: Duration::from_secs(10 * 60),
            export_rows: 10_000,
            exports_per_hour: 3,
            read_records: 5_000,
            alert_email: None,
            alert_webhook: None,
            alert_webhook_secret: None,
            travel_kmh: 1000.0,
            new_country_days: 90,
        }
    }
}

impl std::fmt::Debug for DetectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectionSettings")
            .field("failed_logins", &self.failed_logins)
            .field("spray_accounts", &self.spray_accounts)
            .field("window", &self.window)
            .field("export_rows", &self.export_rows)
            .field("exports_per_hour", &self.exports_per_hour)
            .field("read_records", &self.read_records)
            .field("alert_email", &self.alert_email)
            .field("alert_webhook", &self.alert_webhook.is_some())
            .finish_non_exhaustive()
    }
}

/// This node's counters for the rules that count in memory (see the module documentation).
#[derive(Default)]
pub struct Detector {
    reads: dashmap::DashMap<String, std::collections::VecDeque<(time::OffsetDateTime, u64)>>,
    exports: dashmap::DashMap<String, rules::ExportProgress>,
    key_addresses: dashmap::DashSet<(palisade_domain::ApiKeyId, String)>,
    /// The City database, when `PALISADE_GEOIP_DB` is set (the geographic rules are off
    /// without it).
    geo: std::sync::OnceLock<std::sync::Arc<geo::GeoDb>>,
}

impl Detector {
    /// Turns the geographic rules on with `db` (once, at start).
    pub fn set_geo(&self, db: geo::GeoDb) {
        let _ = self.geo.set(std::sync::Arc::new(db));
    }

    pub fn geo(&self) -> Option<&geo::GeoDb> {
        self.geo.get().map(|g| g.as_ref())
    }
}

/// An audit record a unit of work wrote, handed to the rules after its commit.
#[derive(Debug, Clone)]
pub struct AuditedEvent {
    pub id: AuditRecordId,
    pub entry: AuditEntry,
}

/// Whether a record of `action` can complete a rule (only those are handed to [`evaluate`]).
pub fn watches(action: &str) -> bool {
    matches!(
        action,
        "user.created"
            | "user.role_changed"
            | "tenant.ownership_transferred"
            | "tenant.updated"
            | "api_key.created"
            | "api_key.updated"
            | "webhook.approved"
            | "platform.super_admin.created"
            | "contact.exported"
            | "audit_log.exported"
    )
}

/// Runs the rules over records that just committed; failures are logged, never returned (the
/// change they watch is already durable).
pub async fn evaluate(s: Services, events: Vec<AuditedEvent>) {
    for e in events {
        if let Err(err) = rules::on_audit(&s, &e).await {
            tracing::warn!(error = %err, action = %e.entry.action, "a detection rule failed");
        }
    }
}

/// Raises (or bumps) an alert and, when it opens, delivers it. Returns the alert as it stands.
pub async fn raise(s: &Services, mut alert: NewAlert) -> AppResult<SecurityAlert> {
    let scope = SystemScope::new("security.alerts.raise");
    let mut uow = UnitOfWork::system(s, SystemActor::Detections, scope).await?;
    if let Some(t) = alert.tenant_id {
        uow.set_tenant(t);
    }
    let now = uow.now();
    // What a rule saw outside the audit log (an API key's new address, a volume of reads, a
    // backup that failed on another transaction) is recorded now, in the tenant's (or the
    // platform's) chain, so that every alert's evidence names at least one audit record.
    if alert.evidence.is_empty() {
        let entry = uow
            .entry("security.alert.observed")
            .target(&alert.subject_type, &alert.subject_id)
            .metadata(serde_json::json!({
                "rule": alert.rule.as_str(),
                "severity": alert.severity.as_str(),
                "summary": alert.summary,
            }));
        alert.evidence.push(uow.audit_record(entry).await?);
    }
    let raised = store::raise(uow.tx(), &alert, now).await?;
    if raised.opened {
        delivery::within(&mut uow, &raised.alert).await?;
    }
    uow.commit().await?;
    if raised.opened {
        crate::metrics::security_alert(raised.alert.rule, raised.alert.severity);
        tracing::warn!(
            alert = %raised.alert.id,
            rule = raised.alert.rule.as_str(),
            severity = raised.alert.severity.as_str(),
            "security alert raised"
        );
    }
    Ok(raised.alert)
}

/// Raises a platform alert (no tenant; seen by super admins and sent to
/// `PALISADE_SECURITY_ALERT_EMAIL` / `_WEBHOOK`): for platform work such as a failed or missed
/// backup (`AlertRule::BackupFailed`). `subject_type`/`subject_id` name what it is about (e.g.
/// `"backup"`, the schedule or archive name); repeats while unresolved bump `occurrences`.
pub async fn raise_platform_alert(
    s: &Services,
    rule: AlertRule,
    severity: AlertSeverity,
    subject_type: &str,
    subject_id: &str,
    summary: &str,
    evidence: Vec<AuditRecordId>,
) -> AppResult<SecurityAlert> {
    raise(
        s,
        NewAlert {
            tenant_id: None,
            rule,
            severity,
            subject_type: subject_type.to_owned(),
            subject_id: subject_id.to_owned(),
            subject_label: None,
            summary: summary.to_owned(),
            evidence,
        },
    )
    .await
}

/// Spawns [`evaluate`] for the watched records of a committed unit of work.
pub(crate) fn spawn_evaluation(s: &Services, events: Vec<AuditedEvent>) {
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| watches(&e.entry.action))
        .collect();
    if events.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(evaluate(s.clone(), events));
    }
}

fn tenant_of(e: &AuditEntry) -> Option<TenantId> {
    e.tenant_id
}
