//! Security alerts raised by the detection rules, and the addresses API keys were used from.
//!
//! Invariant: at most one unresolved (open or acknowledged) alert per tenant (or the platform),
//! rule and subject — the partial unique index `security_alerts_unresolved_key`. [`raise`] is
//! one upsert on that index, so two nodes (or two tasks) raising the same alert at once end
//! with one row whose `occurrences` counts both: PostgreSQL's `ON CONFLICT` waits on the row,
//! SQLite has one writer.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::{
    AlertRule, AlertSeverity, AlertStatus, ApiKeyId, AuditRecordId, SecurityAlertId, TenantId,
    UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// How many evidence ids an alert keeps (the newest).
pub const MAX_EVIDENCE: usize = 50;

/// What a rule saw: the alert to open, or to bump if one is unresolved.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// `None`: a platform alert.
    pub tenant_id: Option<TenantId>,
    pub rule: AlertRule,
    pub severity: AlertSeverity,
    pub subject_type: String,
    pub subject_id: String,
    pub subject_label: Option<String>,
    pub summary: String,
    pub evidence: Vec<AuditRecordId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityAlert {
    pub id: SecurityAlertId,
    pub tenant_id: Option<TenantId>,
    pub rule: AlertRule,
    pub severity: AlertSeverity,
    pub subject_type: String,
    pub subject_id: String,
    pub subject_label: Option<String>,
    pub summary: String,
    pub occurrences: i64,
    pub evidence: Vec<AuditRecordId>,
    pub first_seen_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub status: AlertStatus,
    pub note: Option<String>,
    pub acknowledged_by: Option<UserId>,
    pub acknowledged_at: Option<OffsetDateTime>,
    pub resolved_by: Option<UserId>,
    pub resolved_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    rule: String,
    severity: String,
    subject_type: String,
    subject_id: String,
    subject_label: Option<String>,
    summary: String,
    occurrences: i64,
    evidence: sqlx::types::Json<Vec<Uuid>>,
    first_seen_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    status: String,
    note: Option<String>,
    acknowledged_by: Option<Uuid>,
    acknowledged_at: Option<OffsetDateTime>,
    resolved_by: Option<Uuid>,
    resolved_at: Option<OffsetDateTime>,
}

impl TryFrom<AlertRow> for SecurityAlert {
    type Error = crate::StoreError;
    fn try_from(r: AlertRow) -> Result<Self> {
        let bad = |what: &str, v: &str| crate::StoreError::Integrity(format!("{what} {v:?}"));
        Ok(SecurityAlert {
            id: r.id.into(),
            tenant_id: r.tenant_id.map(Into::into),
            rule: r.rule.parse().map_err(|_| bad("alert rule", &r.rule))?,
            severity: r
                .severity
                .parse()
                .map_err(|_| bad("alert severity", &r.severity))?,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            subject_label: r.subject_label,
            summary: r.summary,
            occurrences: r.occurrences,
            evidence: r.evidence.0.into_iter().map(Into::into).collect(),
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
            status: r
                .status
                .parse()
                .map_err(|_| bad("alert status", &r.status))?,
            note: r.note,
            acknowledged_by: r.acknowledged_by.map(Into::into),
            acknowledged_at: r.acknowledged_at,
            resolved_by: r.resolved_by.map(Into::into),
            resolved_at: r.resolved_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, rule, severity, subject_type, subject_id, subject_label, \
    summary, occurrences, evidence, first_seen_at, last_seen_at, status, note, acknowledged_by, \
    acknowledged_at, resolved_by, resolved_at";

fn alerts(rows: Vec<AlertRow>) -> Result<Vec<SecurityAlert>> {
    rows.into_iter().map(SecurityAlert::try_from).collect()
}

/// The outcome of [`raise`]: the alert as it now stands, and whether this call opened it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub alert: SecurityAlert,
    pub opened: bool,
}

/// Opens `a`, or bumps the unresolved alert of the same tenant, rule and subject
/// (`occurrences + 1`, `last_seen_at`, the newest summary, evidence appended). One statement
/// decides which (see the module documentation); the evidence merge that follows runs under
/// the row lock the upsert took.
pub async fn raise<S: Scope>(tx: &mut Tx<S>, a: &NewAlert, now: OffsetDateTime) -> Result<Raised> {
    let evidence: Vec<Uuid> = a.evidence.iter().map(|e| e.as_uuid()).collect();
    let row: AlertRow = tx
        .fetch_one(
            Query::new(format!(
                "INSERT INTO security_alerts
                     (id, tenant_id, tenant_key, rule, severity, subject_type, subject_id,
                      subject_label, summary, occurrences, evidence, first_seen_at, last_seen_at,
                      status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $11, 'open')
                 ON CONFLICT (tenant_key, rule, subject_type, subject_id) WHERE status <> 'resolved'
                 DO UPDATE SET occurrences = security_alerts.occurrences + 1,
                               last_seen_at = excluded.last_seen_at,
                               summary = excluded.summary
                 RETURNING {COLUMNS}"
            ))
            .bind(SecurityAlertId::new())
            .bind(a.tenant_id)
            .bind(a.tenant_id.map_or(Uuid::nil(), |t| t.as_uuid()))
            .bind(a.rule.as_str())
            .bind(a.severity.as_str())
            .bind(a.subject_type.as_str())
            .bind(a.subject_id.as_str())
            .bind(a.subject_label.clone())
            .bind(a.summary.as_str())
            .bind(serde_json::json!(evidence))
            .bind(now),
        )
        .await?;
    let mut alert = SecurityAlert::try_from(row)?;
    let opened = alert.occurrences == 1;
    if !opened && !a.evidence.is_empty() {
        let mut merged = alert.evidence.clone();
        for e in &a.evidence {
            if !merged.contains(e) {
                merged.push(*e);
            }
        }
        let skip = merged.len().saturating_sub(MAX_EVIDENCE);
        merged.drain(..skip);
        let ids: Vec<Uuid> = merged.iter().map(|e| e.as_uuid()).collect();
        tx.execute(
            Query::new("UPDATE security_alerts SET evidence = $2 WHERE id = $1")
                .bind(alert.id)
                .bind(serde_json::json!(ids)),
        )
        .await?;
        alert.evidence = merged;
    }
    Ok(Raised { alert, opened })
}

/// Which alerts to list. `tenant`: one tenant's (a tenant scope always narrows to its own).
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub tenant: Option<TenantId>,
    pub status: Option<AlertStatus>,
    pub severity: Option<AlertSeverity>,
    pub rule: Option<AlertRule>,
    /// Alerts older than this id (the previous page's cursor).
    pub before: Option<SecurityAlertId>,
    pub limit: i64,
}

/// Alerts newest first.
pub async fn list<S: Scope>(tx: &mut Tx<S>, f: &AlertFilter) -> Result<Vec<SecurityAlert>> {
    let tenant = tx.scope().tenant().or(f.tenant);
    let rows: Vec<AlertRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM security_alerts
                 WHERE ($1 IS NULL OR tenant_id = $1)
                   AND ($2 IS NULL OR status = $2)
                   AND ($3 IS NULL OR severity = $3)
                   AND ($4 IS NULL OR rule = $4)
                   AND ($5 IS NULL OR id < $5)
                 ORDER BY id DESC LIMIT $6"
            ))
            .bind(tenant)
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.severity.map(|s| s.as_str()))
            .bind(f.rule.map(|s| s.as_str()))
            .bind(f.before)
            .bind(f.limit),
        )
        .await?;
    alerts(rows)
}

/// One alert, locked for a status change (a tenant scope finds only its own).
pub async fn find_for_update<S: Scope>(
    tx: &mut Tx<S>,
    id: SecurityAlertId,
) -> Result<Option<SecurityAlert>> {
    let tenant = tx.scope().tenant();
    let lock = tx.row_lock();
    let row: Option<AlertRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM security_alerts
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2){lock}"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?;
    row.map(SecurityAlert::try_from).transpose()
}

/// Writes a status change (acknowledged or resolved, with who and when, and the note).
pub async fn update_status<S: Scope>(tx: &mut Tx<S>, a: &SecurityAlert) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "UPDATE security_alerts
             SET status = $3, note = $4, acknowledged_by = $5, acknowledged_at = $6,
                 resolved_by = $7, resolved_at = $8
             WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(a.id)
        .bind(tenant)
        .bind(a.status.as_str())
        .bind(a.note.clone())
        .bind(a.acknowledged_by)
        .bind(a.acknowledged_at)
        .bind(a.resolved_by)
        .bind(a.resolved_at),
    )
    .await?;
    Ok(())
}

/// Counts for `GET /api/v1/security/metrics` over `[from, to)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    pub total_events: i64,
    pub critical_events: i64,
    pub failed_logins: i64,
    pub suspicious_activities: i64,
    pub unresolved_alerts: i64,
}

/// The metrics of one tenant (`Some`) or the whole platform (`None`, system scope only).
pub async fn metrics<S: Scope>(
    tx: &mut Tx<S>,
    tenant: Option<TenantId>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Metrics> {
    #[derive(sqlx::FromRow)]
    struct Row {
        total_events: i64,
        failed_logins: i64,
        critical_events: i64,
        suspicious_activities: i64,
        unresolved_alerts: i64,
    }
    let tenant = tx.scope().tenant().or(tenant);
    let row: Row = tx
        .fetch_one(
            Query::new(
                "SELECT
                   (SELECT COUNT(*) FROM audit_log
                     WHERE ($1 IS NULL OR tenant_id = $1) AND created_at >= $2 AND created_at < $3)
                     AS total_events,
                   (SELECT COUNT(*) FROM audit_log
                     WHERE ($1 IS NULL OR tenant_id = $1) AND created_at >= $2 AND created_at < $3
                       AND action IN ('auth.login.failed', 'auth.login.mfa_failed'))
                     AS failed_logins,
                   (SELECT COUNT(*) FROM security_alerts
                     WHERE ($1 IS NULL OR tenant_id = $1) AND first_seen_at >= $2
                       AND first_seen_at < $3 AND severity = 'critical')
                     AS critical_events,
                   (SELECT COUNT(*) FROM security_alerts
                     WHERE ($1 IS NULL OR tenant_id = $1) AND first_seen_at >= $2
                       AND first_seen_at < $3)
                     AS suspicious_activities,
                   (SELECT COUNT(*) FROM security_alerts
                     WHERE ($1 IS NULL OR tenant_id = $1) AND status <> 'resolved')
                     AS unresolved_alerts",
            )
            .bind(tenant)
            .bind(from)
            .bind(to),
        )
        .await?;
    Ok(Metrics {
        total_events: row.total_events,
        critical_events: row.critical_events,
        failed_logins: row.failed_logins,
        suspicious_activities: row.suspicious_activities,
        unresolved_alerts: row.unresolved_alerts,
    })
}

/// Remembers that `key` was used from `address` (an IP, or `country:XX`). Returns whether it
/// is new for this key, and whether the key had been seen anywhere before (the first address a
/// key is used from is no alert: there is nothing to compare with).
pub async fn remember_api_key_address<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    key: ApiKeyId,
    address: &str,
    now: OffsetDateTime,
) -> Result<(bool, bool)> {
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i64,
    }
    let known: Row = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM api_key_addresses
                 WHERE tenant_id = $1 AND api_key_id = $2
                   AND (CASE WHEN address LIKE 'country:%' THEN 1 ELSE 0 END) = $3",
            )
            .bind(tenant)
            .bind(key)
            .bind(i64::from(address.starts_with("country:"))),
        )
        .await?;
    let inserted = tx
        .execute(
            Query::new(
                "INSERT INTO api_key_addresses (tenant_id, api_key_id, address, first_seen_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, api_key_id, address) DO NOTHING",
            )
            .bind(tenant)
            .bind(key)
            .bind(address)
            .bind(now),
        )
        .await?;
    Ok((inserted == 1, known.n > 0))
}

/// An audit record a rule counts.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentRecord {
    pub id: AuditRecordId,
    pub target_id: Option<String>,
    pub metadata: serde_json::Value,
}

/// What [`recent_records`] looks for: records of `actions` since `since`, narrowed by each
/// given field.
#[derive(Debug, Clone, Default)]
pub struct RecentFilter<'a> {
    pub actions: &'a [&'a str],
    pub tenant: Option<TenantId>,
    pub target_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub actor: Option<UserId>,
    pub since: Option<OffsetDateTime>,
}

/// The newest (at most 1,000) audit records matching `f`, newest first.
pub async fn recent_records<S: Scope>(
    tx: &mut Tx<S>,
    f: &RecentFilter<'_>,
) -> Result<Vec<RecentRecord>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        target_id: Option<String>,
        metadata: sqlx::types::Json<serde_json::Value>,
    }
    let db = tx.backend();
    let actions: Vec<String> = f.actions.iter().map(|a| (*a).to_owned()).collect();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT id, target_id, metadata FROM audit_log
                 WHERE ($1 IS NULL OR tenant_id = $1)
                   AND ($2 IS NULL OR target_id = $2)
                   AND ($3 IS NULL OR ip = $3)
                   AND ($4 IS NULL OR actor_id = $4)
                   AND ($5 IS NULL OR created_at >= $5)
                   AND {}
                 ORDER BY id DESC LIMIT 1000",
                crate::query::member_of(db, "action", 6, actions.len())
            ))
            .bind(f.tenant)
            .bind(f.target_id)
            .bind(f.ip)
            .bind(f.actor)
            .bind(f.since)
            .bind_members(db, &actions),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| RecentRecord {
            id: r.id.into(),
            target_id: r.target_id,
            metadata: r.metadata.0,
        })
        .collect())
}

/// Failed sign-in attempts (`failure`, `locked`, `mfa_failure`) since `since`: of one user, or
/// from one address. Returns `(tenant_id, user_id)` of each, newest first (at most 1,000).
pub async fn failed_attempts<S: Scope>(
    tx: &mut Tx<S>,
    user: Option<UserId>,
    ip: Option<&str>,
    since: OffsetDateTime,
) -> Result<Vec<(Option<TenantId>, UserId)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: Option<Uuid>,
        user_id: Uuid,
    }
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT tenant_id, user_id FROM login_history
                 WHERE result IN ('failure', 'locked', 'mfa_failure') AND at >= $3
                   AND ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR ip = $2)
                 ORDER BY id DESC LIMIT 1000",
            )
            .bind(user)
            .bind(ip)
            .bind(since),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tenant_id.map(TenantId::from_uuid), r.user_id.into()))
        .collect())
}

/// A successful sign-in, for the geographic rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SignIn {
    pub id: palisade_domain::LoginAttemptId,
    pub at: OffsetDateTime,
    pub ip: Option<String>,
}

/// The user's successful sign-ins since `since`, newest first (at most 200).
pub async fn successful_sign_ins<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    since: OffsetDateTime,
) -> Result<Vec<SignIn>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        at: OffsetDateTime,
        ip: Option<String>,
    }
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT id, at, ip FROM login_history
                 WHERE user_id = $1 AND result = 'success' AND at >= $2
                 ORDER BY at DESC, id DESC LIMIT 200",
            )
            .bind(user)
            .bind(since),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| SignIn {
            id: r.id.into(),
            at: r.at,
            ip: r.ip,
        })
        .collect())
}
