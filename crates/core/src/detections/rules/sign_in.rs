//! The sign-in rules: an account under attack, password spraying, and with a GeoIP database
//! impossible travel and a new country.

use super::*;

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
            if let Err(e) = password_spraying(&s, &ip, tenant).await {
                tracing::warn!(error = %e, "the password_spraying rule failed");
            }
        }
    });
}

pub(super) async fn account_under_attack(
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

/// A sign-in failed for a name that is no account (nothing to watch but the address): the
/// password spraying rule runs once the failure has committed.
pub(crate) fn unknown_name_failed(s: &Services, ip: String) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = password_spraying(&s, &ip, None).await {
            tracing::warn!(error = %e, "the password_spraying rule failed");
        }
    });
}

/// One address failing against `spray_accounts` different login names in the window: the
/// accounts in the login history, or every name the login throttle last saw fail from it
/// (names that are no account included; whichever is more). The platform's alert names the
/// address; each tenant whose accounts were among the targets gets its own alert too, so that
/// its admins are told (with the evidence of their own tenant): every such tenant when the
/// platform's alert opens, then the tenant of the failure that ran the rule (`current`), so a
/// tenant's occurrences count the failures against its own accounts.
pub(super) async fn password_spraying(
    s: &Services,
    ip: &str,
    current: Option<TenantId>,
) -> AppResult<()> {
    let since = s.now() - window(s);
    let mut tx = s
        .store
        .begin_read(SystemScope::new("detections.spraying"))
        .await?;
    let mut accounts = store::failed_attempts(&mut tx, None, Some(ip), since).await?;
    accounts.sort_unstable_by_key(|(_, u)| u.as_uuid());
    accounts.dedup();
    let names = palisade_store::login_throttle::names_failed_from(&mut tx, ip, since).await?;
    let n = accounts
        .len()
        .max(usize::try_from(names).unwrap_or(usize::MAX));
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
    // An address is not a tenant's: the platform's alert spans every tenant.
    let platform = raise(
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
    let mut tenants: Vec<TenantId> = accounts
        .iter()
        .filter_map(|(t, _)| *t)
        .filter(|t| platform.occurrences <= 1 || Some(*t) == current)
        .collect();
    tenants.sort_unstable_by_key(|t| t.as_uuid());
    tenants.dedup();
    let mut tx = s
        .store
        .begin_read(SystemScope::new("detections.spraying"))
        .await?;
    let mut per_tenant = Vec::with_capacity(tenants.len());
    for t in tenants {
        let theirs = accounts.iter().filter(|(a, _)| *a == Some(t)).count();
        let evidence = store::recent_records(
            &mut tx,
            &RecentFilter {
                actions: &["auth.login.failed", "auth.login.locked"],
                tenant: Some(t),
                ip: Some(ip),
                since: Some(since),
                ..RecentFilter::default()
            },
        )
        .await?;
        per_tenant.push((t, theirs, evidence));
    }
    drop(tx);
    for (t, theirs, records) in per_tenant {
        raise(
            s,
            alert(
                Some(t),
                AlertRule::PasswordSpraying,
                AlertSeverity::High,
                ("ip_address", ip.to_owned(), None),
                // Only this tenant's count: what the address tried elsewhere is not theirs.
                format!(
                    "An address that is failing against many accounts (password spraying) \
                     failed to sign in to {theirs} of this tenant's accounts in the last \
                     {minutes} minutes"
                ),
                evidence(records.into_iter().map(|r| r.id).collect()),
            ),
        )
        .await?;
    }
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

pub(super) fn locate(s: &Services, ip: Option<&str>) -> Option<crate::detections::geo::Place> {
    let ip: IpAddr = ip?.parse().ok()?;
    s.detector.geo()?.locate(ip)
}

pub(super) fn place_label(p: &crate::detections::geo::Place, ip: &str) -> String {
    match &p.country {
        Some(c) => format!("{ip} ({c})"),
        None => ip.to_owned(),
    }
}

pub(super) async fn geographic(
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
            let km = crate::detections::geo::distance_km(a, b);
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
