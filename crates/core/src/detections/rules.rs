//! The rules. Each reads what the system already recorded and, past its threshold, raises an
//! alert through [`super::raise`]. Names and thresholds: docs/security.md.

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

/// A failed sign-in attempt on an existing account was recorded (the login history): the
/// sign-in rules run once it has committed.
pub(crate) fn login_failed(
    s: &Services,
    tenant: Option<TenantId>,
    user: UserId,
    email: String,
    ip: Option<String>,
) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = account_under_attack(&s, tenant, user, &email).await {
            tracing::warn!(error = %e, "the account_under_attack rule failed");
        }
        if let Some(ip) = ip {
            if let Err(e) = password_spraying(&s, &ip).await {
                tracing::warn!(error = %e, "the password_spraying rule failed");
            }
        }
    });
}

async fn account_under_attack(
    s: &Services,
    tenant: Option<TenantId>,
    user: UserId,
    email: &str,
) -> AppResult<()> {
    let since = s.now() - window(s);
    let mut tx = s
        .store
        .begin_read(SystemScope::new("detections.failed_logins"))
        .await?;
    let n = store::failed_attempts(&mut tx, Some(user), None, since)
        .await?
        .len();
    if n < s.settings.detect.failed_logins as usize {
        return Ok(());
    }
    let uid = user.to_string();
    let records = store::recent_records(
        &mut tx,
        &RecentFilter {
            actions: &["auth.login.failed", "auth.login.locked"],
            target_id: Some(&uid),
            since: Some(since),
            ..RecentFilter::default()
        },
    )
    .await?;
    drop(tx);
    let minutes = window(s).whole_minutes();
    raise(
        s,
        alert(
            tenant,
            AlertRule::AccountUnderAttack,
            AlertSeverity::High,
            ("user", uid, Some(email.to_owned())),
            format!("{n} failed sign-ins for this account in the last {minutes} minutes"),
            evidence(records.into_iter().map(|r| r.id).collect()),
        ),
    )
    .await?;
    Ok(())
}

async fn password_spraying(s: &Services, ip: &str) -> AppResult<()> {
    let since = s.now() - window(s);
    let mut tx = s
        .store
        .begin_read(SystemScope::new("detections.spraying"))
        .await?;
    let mut accounts = store::failed_attempts(&mut tx, None, Some(ip), since).await?;
    accounts.sort_unstable_by_key(|u| u.as_uuid());
    accounts.dedup();
    let n = accounts.len();
    if n < s.settings.detect.spray_accounts as usize {
        return Ok(());
    }
    let records = store::recent_records(
        &mut tx,
        &RecentFilter {
            actions: &["auth.login.failed"],
            ip: Some(ip),
            since: Some(since),
            ..RecentFilter::default()
        },
    )
    .await?;
    drop(tx);
    let minutes = window(s).whole_minutes();
    // An address is not a tenant's: the alert is the platform's (it may span tenants).
    raise(
        s,
        alert(
            None,
            AlertRule::PasswordSpraying,
            AlertSeverity::High,
            ("ip_address", ip.to_owned(), None),
            format!(
                "Failed sign-ins against {n} different accounts from one address in the last {minutes} minutes"
            ),
            evidence(records.into_iter().map(|r| r.id).collect()),
        ),
    )
    .await?;
    Ok(())
}

/// A successful sign-in was recorded: with a GeoIP database, the geographic rules run once it
/// has committed.
pub(crate) fn login_succeeded(
    s: &Services,
    tenant: Option<TenantId>,
    user: UserId,
    email: String,
    ip: Option<String>,
    attempt: palisade_domain::LoginAttemptId,
) {
    if s.detector.geo().is_none() || ip.is_none() {
        return;
    }
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = geographic(&s, tenant, user, &email, attempt).await {
            tracing::warn!(error = %e, "a geographic detection rule failed");
        }
    });
}

fn locate(s: &Services, ip: Option<&str>) -> Option<super::geo::Place> {
    let ip: IpAddr = ip?.parse().ok()?;
    s.detector.geo()?.locate(ip)
}

fn place_label(p: &super::geo::Place, ip: &str) -> String {
    match &p.country {
        Some(c) => format!("{ip} ({c})"),
        None => ip.to_owned(),
    }
}

async fn geographic(
    s: &Services,
    tenant: Option<TenantId>,
    user: UserId,
    email: &str,
    attempt: palisade_domain::LoginAttemptId,
) -> AppResult<()> {
    let days = s.settings.detect.new_country_days;
    let since = s.now() - Duration::days(days);
    let sign_ins = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("detections.geography"))
            .await?;
        store::successful_sign_ins(&mut tx, user, since).await?
    };
    let Some(current) = sign_ins.iter().find(|x| x.id == attempt) else {
        return Ok(());
    };
    let Some(here) = locate(s, current.ip.as_deref()) else {
        return Ok(());
    };
    let here_ip = current.ip.clone().unwrap_or_default();
    let others: Vec<_> = sign_ins
        .iter()
        .filter(|x| x.id != attempt && x.at <= current.at)
        .collect();
    let evidence_since = others.first().map_or(current.at, |p| p.at);
    let evidence_ids = || async {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("detections.geography"))
            .await?;
        let records = store::recent_records(
            &mut tx,
            &RecentFilter {
                actions: &["auth.login.succeeded"],
                actor: Some(user),
                since: Some(evidence_since),
                ..RecentFilter::default()
            },
        )
        .await?;
        Ok::<_, crate::AppError>(evidence(records.into_iter().map(|r| r.id).collect()))
    };

    // Impossible travel: against the sign-in just before this one.
    if let Some(previous) = others.first() {
        if let (Some(there), Some(a), Some(b)) = (
            locate(s, previous.ip.as_deref()),
            here.coordinates,
            locate(s, previous.ip.as_deref()).and_then(|p| p.coordinates),
        ) {
            let km = super::geo::distance_km(a, b);
            let hours = ((current.at - previous.at).as_seconds_f64() / 3600.0).max(1.0 / 3600.0);
            let speed = km / hours;
            if km > 0.0 && speed > s.settings.detect.travel_kmh {
                let minutes = (current.at - previous.at).whole_minutes();
                raise(
                    s,
                    alert(
                        tenant,
                        AlertRule::ImpossibleTravel,
                        AlertSeverity::High,
                        ("user", user.to_string(), Some(email.to_owned())),
                        format!(
                            "Signed in from {} and then {} ({:.0} km apart) {minutes} minutes later: {:.0} km/h",
                            place_label(&there, previous.ip.as_deref().unwrap_or_default()),
                            place_label(&here, &here_ip),
                            km,
                            speed
                        ),
                        evidence_ids().await?,
                    ),
                )
                .await?;
            }
        }
    }

    // A country this user has not signed in from in the last `days` days.
    if let Some(country) = here.country.as_deref() {
        let mut seen_any = false;
        let mut seen_here = false;
        let mut ips: Vec<&str> = others.iter().filter_map(|x| x.ip.as_deref()).collect();
        ips.sort_unstable();
        ips.dedup();
        for ip in ips {
            if let Some(c) = locate(s, Some(ip)).and_then(|p| p.country) {
                seen_any = true;
                seen_here |= c == country;
            }
        }
        if seen_any && !seen_here {
            raise(
                s,
                alert(
                    tenant,
                    AlertRule::NewCountry,
                    AlertSeverity::Medium,
                    ("user", user.to_string(), Some(email.to_owned())),
                    format!(
                        "Signed in from {country} ({here_ip}), a country this user has not signed in from in {days} days"
                    ),
                    evidence_ids().await?,
                ),
            )
            .await?;
        }
    }
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

async fn many_exports(s: &Services, e: &AuditedEvent) -> AppResult<()> {
    let r = &e.entry;
    let Some(user) = r.actor_id else {
        return Ok(());
    };
    let since = s.now() - Duration::hours(1);
    let records = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("detections.exports"))
            .await?;
        store::recent_records(
            &mut tx,
            &RecentFilter {
                actions: &["contact.exported", "audit_log.exported"],
                actor: Some(user),
                since: Some(since),
                ..RecentFilter::default()
            },
        )
        .await?
    };
    let n = records.len();
    if n <= s.settings.detect.exports_per_hour as usize {
        return Ok(());
    }
    raise(
        s,
        alert(
            tenant_of(r),
            AlertRule::MassDataAccess,
            AlertSeverity::High,
            ("user", user.to_string(), r.actor_email.clone()),
            format!("{n} exports by this user in the last hour"),
            evidence(records.into_iter().map(|r| r.id).collect()),
        ),
    )
    .await?;
    Ok(())
}

/// One credential: its API key, or its session.
fn credential_key(p: &Principal) -> String {
    match &p.credential {
        Credential::ApiKey(k) => format!("api_key:{}", k.id),
        Credential::Session(sid) => format!("session:{sid}"),
    }
}

fn credential_subject(p: &Principal) -> (&'static str, String, Option<String>) {
    match &p.credential {
        Credential::ApiKey(k) => ("api_key", k.id.to_string(), Some(k.name.clone())),
        Credential::Session(_) => ("user", p.user_id.to_string(), Some(p.email.clone())),
    }
}

/// The width of a bucket of the shared read counter (the window is counted to this width).
const READ_BUCKET_SECONDS: i64 = 10;

/// Counts `n` contacts or messages read by `p` through the API; past
/// `PALISADE_DETECT_READ_RECORDS` within the window, raises `mass_data_access`. With Redis the
/// count is the deployment's (every node's reads of the credential, in 10-second buckets);
/// while Redis does not answer, this node's own (counted in
/// `palisade_redis_fallbacks_total{limit="detect_reads"}`).
pub fn records_read(s: &Services, p: &Principal, n: usize) {
    if n == 0 {
        return;
    }
    let Some(tenant) = p.tenant_id() else {
        return;
    };
    let now = s.now();
    let since = now - window(s);
    let key = credential_key(p);
    let local = {
        let mut entry = s.detector.reads.entry(key.clone()).or_default();
        while entry.front().is_some_and(|(at, _)| *at < since) {
            entry.pop_front();
        }
        let before: u64 = entry.iter().map(|(_, n)| n).sum();
        entry.push_back((now, n as u64));
        (before, before + n as u64)
    };
    // Credentials that stopped reading leave empty windows behind: drop them now and then, so
    // the map holds only the credentials of the last window.
    if s.detector.reads.len() > MAX_TRACKED {
        s.detector
            .reads
            .retain(|_, q| q.back().is_some_and(|(at, _)| *at >= since));
    }
    let subject = credential_subject(p);
    let Some(redis) = s.redis.clone() else {
        reads_counted(s, tenant, subject, local);
        return;
    };
    let s = s.clone();
    tokio::spawn(async move {
        let bucket = now.unix_timestamp().div_euclid(READ_BUCKET_SECONDS);
        let oldest = since.unix_timestamp().div_euclid(READ_BUCKET_SECONDS);
        let ttl = std::time::Duration::try_from(window(&s))
            .unwrap_or(std::time::Duration::from_secs(600))
            + std::time::Duration::from_secs(60);
        let totals = match redis
            .window_add(
                &format!("detect_reads:{key}"),
                bucket,
                oldest,
                n as u64,
                ttl,
            )
            .await
        {
            Some(before) => (before, before + n as u64),
            None => {
                crate::metrics::redis_fallback("detect_reads");
                local
            }
        };
        reads_counted(&s, tenant, subject, totals);
    });
}

/// The read count of a credential went from `total.0` to `total.1`: raises `mass_data_access`
/// once when it crosses the limit (and again at each further crossing of a multiple of it),
/// not on every page past it.
fn reads_counted(
    s: &Services,
    tenant: TenantId,
    subject: (&'static str, String, Option<String>),
    total: (u64, u64),
) {
    let limit = s.settings.detect.read_records;
    if total.1 / (limit + 1) <= total.0 / (limit + 1) || total.1 <= limit {
        return;
    }
    let minutes = window(s).whole_minutes();
    let a = alert(
        Some(tenant),
        AlertRule::MassDataAccess,
        AlertSeverity::High,
        subject,
        format!(
            "{} contacts or messages read through the API by one credential in the last {minutes} minutes",
            total.1
        ),
        vec![],
    );
    spawn_raise(s, a);
}

/// Export sizes are known only as the stream is read: `start` is called by the use case that
/// audits the export, `rows` for every page.
#[derive(Debug, Clone, Default)]
pub struct ExportProgress {
    audit_id: Option<AuditRecordId>,
    rows: u64,
    alerted: bool,
}

/// An export by `p` began (its audit record is `audit_id`).
pub fn export_started(s: &Services, p: &Principal, audit_id: Option<AuditRecordId>) {
    if s.detector.exports.len() > MAX_TRACKED {
        // Exports finished long ago; at worst an export in flight is counted from zero again.
        s.detector.exports.clear();
    }
    s.detector.exports.insert(
        credential_key(p),
        ExportProgress {
            audit_id,
            rows: 0,
            alerted: false,
        },
    );
}

/// `n` more rows of `p`'s current export; past `PALISADE_DETECT_EXPORT_ROWS` raises
/// `mass_data_access` once per export.
pub fn exported_rows(s: &Services, p: &Principal, n: usize) {
    let Some(tenant) = p.tenant_id() else {
        return;
    };
    let limit = s.settings.detect.export_rows;
    let crossed = {
        let mut e = s.detector.exports.entry(credential_key(p)).or_default();
        e.rows += n as u64;
        if e.rows > limit && !e.alerted {
            e.alerted = true;
            Some((e.rows, e.audit_id))
        } else {
            None
        }
    };
    let Some((rows, audit_id)) = crossed else {
        return;
    };
    let a = alert(
        Some(tenant),
        AlertRule::MassDataAccess,
        AlertSeverity::High,
        credential_subject(p),
        format!("An export of more than {limit} rows ({rows} so far)"),
        audit_id.into_iter().collect(),
    );
    spawn_raise(s, a);
}

/// An API key of `tenant` was used from `ip`: the first time this node sees the pair, it is
/// remembered in the database; an address (or, with a GeoIP database, a country) the key had
/// never used raises `api_key_new_address`.
pub fn api_key_used(
    s: &Services,
    tenant: TenantId,
    key: palisade_domain::ApiKeyId,
    key_name: &str,
    ip: Option<IpAddr>,
) {
    let Some(ip) = ip else {
        return;
    };
    let address = ip.to_string();
    if s.detector.key_addresses.len() > MAX_TRACKED * 10 {
        // Only a cache of what the database already knows: forgetting costs one query each.
        s.detector.key_addresses.clear();
    }
    if !s.detector.key_addresses.insert((key, address.clone())) {
        return;
    }
    let s2 = s.clone();
    let name = key_name.to_owned();
    tokio::spawn(async move {
        if let Err(e) = key_address(&s2, tenant, key, &name, &address).await {
            // Forget it, so the next request tries again.
            s2.detector.key_addresses.remove(&(key, address));
            tracing::warn!(error = %e, "recording an API key's address failed");
        }
    });
}

async fn key_address(
    s: &Services,
    tenant: TenantId,
    key: palisade_domain::ApiKeyId,
    name: &str,
    address: &str,
) -> AppResult<()> {
    let now = s.now();
    let country = locate(s, Some(address)).and_then(|p| p.country);
    let (new, known, new_country) = {
        let scope = SystemScope::new("detections.api_key_addresses");
        let mut tx = s.store.begin(scope).await?;
        let r = store::remember_api_key_address(&mut tx, tenant, key, address, now).await?;
        let c = match &country {
            Some(c) => {
                let (new, known) = store::remember_api_key_address(
                    &mut tx,
                    tenant,
                    key,
                    &format!("country:{c}"),
                    now,
                )
                .await?;
                new && known
            }
            None => false,
        };
        tx.commit().await?;
        (r.0, r.1, c)
    };
    if new_country {
        raise(
            s,
            alert(
                Some(tenant),
                AlertRule::ApiKeyNewAddress,
                AlertSeverity::High,
                ("api_key", key.to_string(), Some(name.to_owned())),
                format!(
                    "The API key was used from a country it has never used ({}, {address})",
                    country.unwrap_or_default()
                ),
                vec![],
            ),
        )
        .await?;
        return Ok(());
    }
    if new && known {
        raise(
            s,
            alert(
                Some(tenant),
                AlertRule::ApiKeyNewAddress,
                AlertSeverity::Medium,
                ("api_key", key.to_string(), Some(name.to_owned())),
                format!("The API key was used from an address it has never used ({address})"),
                vec![],
            ),
        )
        .await?;
    }
    Ok(())
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
