//! The rules. Each reads what the system already recorded and, past its threshold, raises an
//! alert through [`super::raise`]. Names and thresholds: docs/security.md.

mod api_keys;
mod data_access;
mod sign_in;

pub use api_keys::api_key_used;
use data_access::many_exports;
pub use data_access::{export_started, exported_rows, records_read, ExportProgress};
use sign_in::locate;
pub(crate) use sign_in::{login_failed, login_succeeded, unknown_name_failed};

use super::{raise, tenant_of, AuditedEvent};
use crate::auth::{Credential, Principal};
use crate::{AppResult, Services};
use palisade_domain::{AlertRule, AlertSeverity, AuditRecordId, TenantId, UserId};
use palisade_store::security_alerts::{self as store, NewAlert, RecentFilter};
use palisade_store::SystemScope;
use serde_json::Value;
use std::net::IpAddr;
use time::Duration;

/// Credentials (or key and address pairs, ten times as many) a node keeps counters for before
/// it forgets the stale ones, so the maps stay bounded.
const MAX_TRACKED: usize = 10_000;

fn window(s: &Services) -> Duration {
    Duration::try_from(s.settings.detect.window).unwrap_or(Duration::minutes(10))
}

fn alert(
    tenant: Option<TenantId>,
    rule: AlertRule,
    severity: AlertSeverity,
    subject: (&str, String, Option<String>),
    summary: String,
    evidence: Vec<AuditRecordId>,
) -> NewAlert {
    NewAlert {
        tenant_id: tenant,
        rule,
        severity,
        subject_type: subject.0.to_owned(),
        subject_id: subject.1,
        subject_label: subject.2,
        summary,
        evidence,
    }
}

/// The newest `MAX_EVIDENCE` ids, oldest first.
fn evidence(mut ids: Vec<AuditRecordId>) -> Vec<AuditRecordId> {
    ids.truncate(store::MAX_EVIDENCE);
    ids.reverse();
    ids
}

pub(super) async fn on_audit(s: &Services, e: &AuditedEvent) -> AppResult<()> {
    let r = &e.entry;
    match r.action.as_str() {
        "user.created" | "user.role_changed" => {
            let admin = r
                .after
                .as_ref()
                .and_then(|a| a.get("role"))
                .and_then(Value::as_str)
                == Some("admin");
            if admin {
                let label = r
                    .after
                    .as_ref()
                    .and_then(|a| a.get("email"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let what = if r.action == "user.created" {
                    "An admin was created"
                } else {
                    "A user was made admin"
                };
                escalation(
                    s,
                    e,
                    AlertSeverity::High,
                    ("user", label),
                    format!("{what} by {}", actor(r)),
                )
                .await?;
            }
        }
        "tenant.ownership_transferred" => {
            escalation(
                s,
                e,
                AlertSeverity::High,
                ("tenant", None),
                format!("Ownership of the tenant was transferred by {}", actor(r)),
            )
            .await?;
        }
        "tenant.updated" => {
            let rank = |v: Option<&Value>| match v
                .and_then(|v| v.get("require_2fa"))
                .and_then(Value::as_str)
            {
                Some("everyone") => 2,
                Some("admins") => 1,
                _ => 0,
            };
            let (before, after) = (rank(r.before.as_ref()), rank(r.after.as_ref()));
            if after < before {
                escalation(
                    s,
                    e,
                    AlertSeverity::High,
                    ("tenant", None),
                    format!(
                        "The tenant's two-factor requirement was lowered by {}",
                        actor(r)
                    ),
                )
                .await?;
            }
        }
        "api_key.created" | "api_key.updated" => {
            let powerful = |v: Option<&Value>| -> Vec<String> {
                v.and_then(|v| v.get("scopes"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .filter(|s| is_powerful_scope(s))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let before = powerful(r.before.as_ref());
            let gained: Vec<String> = powerful(r.after.as_ref())
                .into_iter()
                .filter(|s| !before.contains(s))
                .collect();
            if !gained.is_empty() {
                let label = r
                    .after
                    .as_ref()
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let severity = if gained.iter().any(|s| s == "full_access") {
                    AlertSeverity::High
                } else {
                    AlertSeverity::Medium
                };
                escalation(
                    s,
                    e,
                    severity,
                    ("api_key", label),
                    format!("An API key was given {} by {}", gained.join(", "), actor(r)),
                )
                .await?;
            }
        }
        "webhook.approved" => webhook_new_domain(s, e).await?,
        "platform.super_admin.created" => {
            escalation(
                s,
                e,
                AlertSeverity::Critical,
                ("user", None),
                "A super admin was created".to_owned(),
            )
            .await?;
        }
        "contact.exported" | "audit_log.exported" => many_exports(s, e).await?,
        _ => {}
    }
    Ok(())
}

/// Write, delete and export scopes, and `full_access`.
fn is_powerful_scope(s: &str) -> bool {
    s == "full_access" || s.ends_with(":write") || s.ends_with(":delete") || s.ends_with(":export")
}

fn actor(r: &palisade_store::audit::AuditEntry) -> String {
    r.actor_email
        .clone()
        .unwrap_or_else(|| r.actor_role.clone().unwrap_or_else(|| "the system".into()))
}

async fn escalation(
    s: &Services,
    e: &AuditedEvent,
    severity: AlertSeverity,
    subject: (&str, Option<String>),
    summary: String,
) -> AppResult<()> {
    let r = &e.entry;
    let id = r.target_id.clone().unwrap_or_default();
    raise(
        s,
        alert(
            tenant_of(r),
            AlertRule::PrivilegeEscalation,
            severity,
            (subject.0, id, subject.1),
            summary,
            vec![e.id],
        ),
    )
    .await?;
    Ok(())
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

async fn webhook_new_domain(s: &Services, e: &AuditedEvent) -> AppResult<()> {
    let r = &e.entry;
    let Some(host) = r
        .metadata
        .get("url")
        .and_then(Value::as_str)
        .and_then(url_host)
    else {
        return Ok(());
    };
    let Some(tenant) = tenant_of(r) else {
        return Ok(());
    };
    let earlier = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("detections.webhooks"))
            .await?;
        store::recent_records(
            &mut tx,
            &RecentFilter {
                actions: &["webhook.approved"],
                tenant: Some(tenant),
                ..RecentFilter::default()
            },
        )
        .await?
    };
    let seen = earlier.iter().filter(|x| x.id != e.id).any(|x| {
        x.metadata
            .get("url")
            .and_then(Value::as_str)
            .and_then(url_host)
            .as_deref()
            == Some(host.as_str())
    });
    if seen {
        return Ok(());
    }
    escalation(
        s,
        e,
        AlertSeverity::Medium,
        ("webhook", Some(host.clone())),
        format!(
            "A webhook to a new domain ({host}) was approved by {}",
            actor(r)
        ),
    )
    .await
}

fn spawn_raise(s: &Services, a: NewAlert) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = raise(&s, a).await {
            tracing::warn!(error = %e, "raising a security alert failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://Hooks.Example.com:443/a?b").as_deref(),
            Some("hooks.example.com")
        );
        assert_eq!(url_host("https://u:p@x.org/").as_deref(), Some("x.org"));
    }

    #[test]
    fn powerful_scopes() {
        assert!(is_powerful_scope("full_access"));
        assert!(is_powerful_scope("contacts:export"));
        assert!(is_powerful_scope("contacts:write"));
        assert!(!is_powerful_scope("contacts:read"));
        assert!(!is_powerful_scope("read_only"));
    }
}
