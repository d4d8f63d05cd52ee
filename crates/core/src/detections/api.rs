//! Reading and handling alerts: `GET /api/v1/security/alerts`, acknowledge, resolve, and
//! `GET /api/v1/security/metrics`. A tenant's admins see their tenant's alerts; super admins
//! see every tenant's and the platform's. Never an API key (no scope grants security alerts);
//! an impersonation may read but not acknowledge or resolve (support must not hide an attack
//! from the tenant).

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    rfc3339, AlertRule, AlertSeverity, AlertStatus, Permission, Role, SecurityAlertId, TenantId,
};
use palisade_store::security_alerts::{self as store, AlertFilter, SecurityAlert};
use palisade_store::SystemScope;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertSubject {
    /// `user`, `ip_address`, `api_key`, `webhook`, `tenant`, `backup`, …
    #[serde(rename = "type")]
    pub subject_type: String,
    pub id: String,
    pub label: Option<String>,
}

// A security alert: the REST answer, the `security.alert` webhook event's data and the
// platform webhook's. (A plain comment: a doc comment would become the schema's description.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = SecurityAlertResponse)]
pub struct AlertView {
    pub id: Uuid,
    /// `account_under_attack`, `password_spraying`, `impossible_travel`, `new_country`,
    /// `privilege_escalation`, `mass_data_access`, `api_key_new_address`, `backup_failed`.
    #[schema(value_type = AlertRuleSchema)]
    pub rule: String,
    /// `low`, `medium`, `high` or `critical`.
    #[schema(value_type = AlertSeveritySchema)]
    pub severity: String,
    /// `null` for a platform alert.
    pub tenant_id: Option<Uuid>,
    pub subject: AlertSubject,
    pub summary: String,
    pub occurrences: i64,
    /// Ids of the audit records that triggered it.
    pub evidence: Vec<Uuid>,
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// `open`, `acknowledged` or `resolved`.
    #[schema(value_type = AlertStatusSchema)]
    pub status: String,
}

/// A detection rule (docs/security.md, "Detections and alerts").
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AlertRule)]
pub enum AlertRuleSchema {
    AccountUnderAttack,
    PasswordSpraying,
    ImpossibleTravel,
    NewCountry,
    PrivilegeEscalation,
    MassDataAccess,
    ApiKeyNewAddress,
    BackupFailed,
}

/// low, medium, high or critical.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AlertSeverity)]
pub enum AlertSeveritySchema {
    Low,
    Medium,
    High,
    Critical,
}

/// open, acknowledged or resolved.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AlertStatus)]
pub enum AlertStatusSchema {
    Open,
    Acknowledged,
    Resolved,
}

impl From<&SecurityAlert> for AlertView {
    fn from(a: &SecurityAlert) -> Self {
        AlertView {
            id: a.id.as_uuid(),
            rule: a.rule.as_str().into(),
            severity: a.severity.as_str().into(),
            tenant_id: a.tenant_id.map(|t| t.as_uuid()),
            subject: AlertSubject {
                subject_type: a.subject_type.clone(),
                id: a.subject_id.clone(),
                label: a.subject_label.clone(),
            },
            summary: a.summary.clone(),
            occurrences: a.occurrences,
            evidence: a.evidence.iter().map(|e| e.as_uuid()).collect(),
            first_seen_at: rfc3339(a.first_seen_at),
            last_seen_at: rfc3339(a.last_seen_at),
            status: a.status.as_str().into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SecurityMetricsResponse)]
pub struct SecurityMetricsView {
    /// Audit records in the period.
    pub total_events: i64,
    /// Critical alerts raised in the period.
    pub critical_events: i64,
    /// Failed sign-ins (wrong password or second factor) in the period.
    pub failed_logins: i64,
    /// Alerts raised in the period, any severity.
    pub suspicious_activities: i64,
    /// Alerts open or acknowledged now.
    pub unresolved_alerts: i64,
}

/// The query of `GET /api/v1/security/alerts`, as given.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub status: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub tenant_id: Option<Uuid>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

fn invalid(message: String) -> AppError {
    AppError::BadRequest {
        code: code::INVALID_QUERY,
        message,
    }
}

fn parse<T: std::str::FromStr>(what: &str, v: Option<&str>, all: &[&str]) -> AppResult<Option<T>> {
    match v {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("{what} must be one of: {}", all.join(", ")))),
    }
}

fn require_read(p: &Principal) -> AppResult<()> {
    p.require(Permission::SecurityAlertsRead)
}

/// Alerts newest first, 50 a page (`limit` 1–200).
pub async fn list(s: &Services, p: &Principal, q: AlertQuery) -> AppResult<Page<AlertView>> {
    require_read(p)?;
    let statuses: Vec<&str> = AlertStatus::ALL.iter().map(|x| x.as_str()).collect();
    let severities: Vec<&str> = AlertSeverity::ALL.iter().map(|x| x.as_str()).collect();
    let rules: Vec<&str> = AlertRule::ALL.iter().map(|x| x.as_str()).collect();
    let status = parse::<AlertStatus>("status", q.status.as_deref(), &statuses)?;
    let severity = parse::<AlertSeverity>("severity", q.severity.as_deref(), &severities)?;
    let rule = parse::<AlertRule>("rule", q.rule.as_deref(), &rules)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit must be between 1 and 200".into()));
    }
    let mut f = AlertFilter {
        tenant: None,
        status,
        severity,
        rule,
        before: q.cursor.map(SecurityAlertId::from),
        limit: limit + 1,
    };
    let rows = if p.role == Role::SuperAdmin && p.impersonator.is_none() {
        f.tenant = q.tenant_id.map(TenantId::from);
        let mut tx = s
            .store
            .begin_read(SystemScope::new("security.alerts.platform"))
            .await?;
        store::list(&mut tx, &f).await?
    } else {
        if q.tenant_id
            .is_some_and(|t| Some(TenantId::from(t)) != p.tenant_id())
        {
            // Another tenant's alerts are not there, exactly as if it had none.
            return Ok(Page {
                data: vec![],
                next_cursor: None,
            });
        }
        let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
        store::list(&mut tx, &f).await?
    };
    Ok(Page::from_overfetch(rows, limit, |a| a.id.as_uuid()).map(|a| AlertView::from(&a)))
}

/// Acknowledges an open alert (someone is looking at it). Acknowledging an acknowledged one
/// changes nothing; a resolved one is `409 alert_resolved`.
pub async fn acknowledge(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: SecurityAlertId,
) -> AppResult<AlertView> {
    change(s, p, meta, id, AlertStatus::Acknowledged, None).await
}

/// Resolves an alert, with an optional note (at most 2,000 characters). A repeat of its rule on
/// its subject opens a new alert afterwards.
pub async fn resolve(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: SecurityAlertId,
    note: Option<String>,
) -> AppResult<AlertView> {
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(AppError::validation([palisade_domain::FieldError::new(
            "note",
            "must be at most 2000 characters",
        )]));
    }
    change(s, p, meta, id, AlertStatus::Resolved, note).await
}

async fn change(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: SecurityAlertId,
    to: AlertStatus,
    note: Option<String>,
) -> AppResult<AlertView> {
    p.require(Permission::SecurityAlertsManage)?;
    if p.role == Role::SuperAdmin && p.impersonator.is_none() {
        let scope = SystemScope::new("security.alerts.platform");
        let mut uow = UnitOfWork::begin_in(s, p, meta, scope).await?;
        let a = store::find_for_update(uow.tx(), id)
            .await?
            .ok_or(AppError::NotFound("security alert"))?;
        if let Some(t) = a.tenant_id {
            uow.set_tenant(t);
        }
        apply(uow, p, a, to, note).await
    } else {
        let mut uow = UnitOfWork::begin(s, p, meta).await?;
        let a = store::find_for_update(uow.tx(), id)
            .await?
            .ok_or(AppError::NotFound("security alert"))?;
        apply(uow, p, a, to, note).await
    }
}

async fn apply<S: palisade_store::Scope>(
    mut uow: UnitOfWork<'_, S>,
    p: &Principal,
    before: SecurityAlert,
    to: AlertStatus,
    note: Option<String>,
) -> AppResult<AlertView> {
    if before.status == AlertStatus::Resolved {
        return Err(AppError::conflict(
            code::ALERT_RESOLVED,
            "the alert is already resolved",
        ));
    }
    let now: OffsetDateTime = uow.now();
    let mut after = before.clone();
    after.status = to;
    match to {
        AlertStatus::Acknowledged => {
            if before.status == AlertStatus::Acknowledged {
                return Ok(AlertView::from(&before));
            }
            after.acknowledged_by = Some(p.user_id);
            after.acknowledged_at = Some(now);
        }
        AlertStatus::Resolved => {
            after.resolved_by = Some(p.user_id);
            after.resolved_at = Some(now);
            if note.is_some() {
                after.note = note;
            }
        }
        AlertStatus::Open => {}
    }
    store::update_status(uow.tx(), &after).await?;
    let action = match to {
        AlertStatus::Resolved => "security.alert.resolved",
        _ => "security.alert.acknowledged",
    };
    uow.audit(
        uow.entry(action)
            .target("security_alert", after.id)
            .change(
                Some(serde_json::json!({ "status": before.status.as_str() })),
                Some(serde_json::json!({ "status": after.status.as_str() })),
            )
            .metadata(serde_json::json!({
                "rule": after.rule.as_str(),
                "has_note": after.note.is_some(),
            })),
    )
    .await?;
    uow.commit().await?;
    Ok(AlertView::from(&after))
}

/// The period `[from, to)`'s counts (default: the last 24 hours up to now; `from` < `to`, at most 366 days).
pub async fn metrics(
    s: &Services,
    p: &Principal,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> AppResult<SecurityMetricsView> {
    require_read(p)?;
    // Up to and including this instant (a record written now is in "the last 24 hours").
    let to = to.unwrap_or_else(|| s.now() + time::Duration::seconds(1));
    let from = from.unwrap_or(to - time::Duration::days(1));
    if from >= to {
        return Err(invalid("from must be before to".into()));
    }
    if to - from > time::Duration::days(366) {
        return Err(invalid("the period may be at most 366 days".into()));
    }
    let m = if p.role == Role::SuperAdmin && p.impersonator.is_none() {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("security.metrics.platform"))
            .await?;
        store::metrics(&mut tx, None, from, to).await?
    } else {
        let scope = p.tenant_scope()?;
        let tenant = scope.tenant_id();
        let mut tx = s.store.begin_read(scope).await?;
        store::metrics(&mut tx, Some(tenant), from, to).await?
    };
    Ok(SecurityMetricsView {
        total_events: m.total_events,
        critical_events: m.critical_events,
        failed_logins: m.failed_logins,
        suspicious_activities: m.suspicious_activities,
        unresolved_alerts: m.unresolved_alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{AlertRule, AlertSeverity, AlertStatus};

    fn names<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// The document's enums list exactly the domain's values, in their order.
    #[test]
    fn the_schema_enums_are_the_domain_values() {
        use AlertRuleSchema as R;
        assert_eq!(
            names(&[
                R::AccountUnderAttack,
                R::PasswordSpraying,
                R::ImpossibleTravel,
                R::NewCountry,
                R::PrivilegeEscalation,
                R::MassDataAccess,
                R::ApiKeyNewAddress,
                R::BackupFailed,
            ]),
            AlertRule::ALL.map(|r| r.as_str().to_owned())
        );
        use AlertSeveritySchema as S;
        assert_eq!(
            names(&[S::Low, S::Medium, S::High, S::Critical]),
            AlertSeverity::ALL.map(|s| s.as_str().to_owned())
        );
        use AlertStatusSchema as T;
        assert_eq!(
            names(&[T::Open, T::Acknowledged, T::Resolved]),
            AlertStatus::ALL.map(|s| s.as_str().to_owned())
        );
    }
}
