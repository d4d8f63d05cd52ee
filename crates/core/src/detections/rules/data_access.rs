//! Mass data access: a large export, many exports in an hour, one credential reading many
//! records.

use super::*;

pub(super) async fn many_exports(s: &Services, e: &AuditedEvent) -> AppResult<()> {
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
pub(super) fn credential_key(p: &Principal) -> String {
    match &p.credential {
        Credential::ApiKey(k) => format!("api_key:{}", k.id),
        Credential::Session(sid) => format!("session:{sid}"),
    }
}

pub(super) fn credential_subject(p: &Principal) -> (&'static str, String, Option<String>) {
    match &p.credential {
        Credential::ApiKey(k) => ("api_key", k.id.to_string(), Some(k.name.clone())),
        Credential::Session(_) => ("user", p.user_id.to_string(), Some(p.email.clone())),
    }
}

/// The width of a bucket of the shared read counter (the window is counted to this width).
pub(super) const READ_BUCKET_SECONDS: i64 = 10;

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
pub(super) fn reads_counted(
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
