//! Scheduled backups in `palisade serve` (`PALISADE_BACKUP_DIR`, `PALISADE_BACKUP_SCHEDULE`,
//! `PALISADE_BACKUP_RETENTION_DAYS`).
//!
//! A worker (`worker::spawn_periodic`, every few seconds) compares the services' clock with the
//! next occurrence of the cron schedule (UTC); when it is due, it writes an archive into the
//! directory, verifies it (a full scratch restore), and only then deletes archives older than
//! the retention: an older archive is never deleted unless a newer one has been verified. The
//! clock is the services' `Clock`, so tests move time instead of waiting for 02:00.
//!
//! Each outcome is in the platform's audit chain (`platform.backup.created`, `…verified`,
//! `…failed`); a success sets `palisade_backup_last_success_timestamp_seconds`, a failure (or
//! a run that started late enough to count as missed) increments
//! `palisade_backup_failures_total{reason}` and goes through [`raise_backup_alert`].

use super::{archive_name, create, file_name, record, verify, BackupContext, BackupError};
use crate::worker::{spawn_periodic, Next};
use crate::Services;
use palisade_domain::{AlertRule, AlertSeverity};
use palisade_store::{scheduled_runs, SystemScope};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Every archive the schedule writes is named `palisade-backup-<UTC time>.tar.zst.age`;
/// retention looks only at files named so.
pub const ARCHIVE_PREFIX: &str = "palisade-backup-";

/// A run that starts this much after its due time (the node was down, asleep or stuck) is
/// also reported as missed.
pub const MISSED_AFTER: time::Duration = time::Duration::minutes(15);

/// How often the worker looks at the clock.
pub const TICK: Duration = Duration::from_secs(1);

/// The schedule's settings.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dir: PathBuf,
    pub cron: croner::Cron,
    pub retention_days: u32,
}

impl Plan {
    /// The first occurrence strictly after `t`, or `None` when the schedule has no more.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())?;
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
    }

    /// The latest occurrence at or before `t`, or `None` when the schedule has none.
    pub fn at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = chrono::DateTime::from_timestamp(t.unix_timestamp(), 0)?;
        let previous = self.cron.find_previous_occurrence(&at, true).ok()?;
        OffsetDateTime::from_unix_timestamp(previous.timestamp()).ok()
    }
}

/// Why a scheduled backup needs the operator's attention.
#[derive(Debug, Clone)]
pub enum BackupProblem {
    /// The run due at `due` started only at `started` (more than [`MISSED_AFTER`] late).
    Missed {
        due: OffsetDateTime,
        started: OffsetDateTime,
    },
    /// Writing the archive failed.
    Failed { error: String },
    /// The archive was written but does not verify.
    VerificationFailed { file: String, problems: Vec<String> },
}

impl BackupProblem {
    fn reason(&self) -> &'static str {
        match self {
            BackupProblem::Missed { .. } => "missed",
            BackupProblem::Failed { .. } => "failed",
            BackupProblem::VerificationFailed { .. } => "verification_failed",
        }
    }
}

/// A failed or missed backup: logged at `error`, counted in
/// `palisade_backup_failures_total{reason}`, and raised as the platform alert `backup_failed`
/// (subject: the reason; a repeat while it is unresolved adds an occurrence), which mails
/// `PALISADE_SECURITY_ALERT_EMAIL` and posts to `PALISADE_SECURITY_ALERT_WEBHOOK`.
pub async fn raise_backup_alert(s: &Services, problem: &BackupProblem) {
    crate::metrics::backup_failed(problem.reason());
    let (severity, summary) = match problem {
        BackupProblem::Missed { due, started } => {
            tracing::error!(
                due = %palisade_domain::rfc3339(*due),
                started = %palisade_domain::rfc3339(*started),
                "a scheduled backup was missed: it started late"
            );
            (
                AlertSeverity::Medium,
                format!(
                    "The scheduled backup due at {} started late, at {}.",
                    palisade_domain::rfc3339(*due),
                    palisade_domain::rfc3339(*started)
                ),
            )
        }
        BackupProblem::Failed { error } => {
            tracing::error!(error = %error, "a scheduled backup failed");
            (
                AlertSeverity::High,
                format!("A scheduled backup failed: {error}"),
            )
        }
        BackupProblem::VerificationFailed { file, problems } => {
            tracing::error!(
                file = %file,
                problems = %problems.join("; "),
                "a scheduled backup does not verify"
            );
            (
                AlertSeverity::High,
                format!(
                    "The scheduled backup {file} does not verify: {}",
                    problems.join("; ")
                ),
            )
        }
    };
    if let Err(e) = crate::detections::raise_platform_alert(
        s,
        AlertRule::BackupFailed,
        severity,
        "backup",
        problem.reason(),
        &summary,
        Vec::new(),
    )
    .await
    {
        tracing::error!(error = %e, "the backup alert could not be raised");
    }
}

/// What one scheduled run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub archive: PathBuf,
    /// Whether the archive was verified (false when nothing configured can decrypt it).
    pub verified: bool,
    /// Older archives deleted by the retention.
    pub deleted: Vec<PathBuf>,
}

/// Starts the schedule on this node; the first run is due at `first` (the first occurrence
/// after the server was built: computed then, so that a clock moved before this task first
/// runs cannot skip it).
pub fn spawn(
    s: Services,
    ctx: BackupContext,
    plan: Plan,
    first: Option<OffsetDateTime>,
    tick: Duration,
) -> JoinHandle<()> {
    let state = Arc::new(Mutex::new(State {
        next: first,
        looked_back: false,
    }));
    let (ctx, plan) = (Arc::new(ctx), Arc::new(plan));
    tracing::info!(
        dir = %plan.dir.display(),
        next = %next_text(first),
        "scheduled backups on"
    );
    spawn_periodic("backup schedule check failed", tick, None, move || {
        round(s.clone(), ctx.clone(), plan.clone(), state.clone())
    })
}

/// The name under which the schedule's occurrences are claimed (`scheduled_runs.job`).
pub const JOB: &str = "backup";

/// How long the claims of past runs are kept (only the latest one is read).
const CLAIMS_KEPT: time::Duration = time::Duration::days(90);

/// What the worker keeps between rounds.
struct State {
    /// The occurrence this node waits for.
    next: Option<OffsetDateTime>,
    /// Whether the first round has looked at the cluster's last run (missed while down).
    looked_back: bool,
}

/// One look at the clock: runs the backup when it is due, if no other node claimed it.
async fn round(
    s: Services,
    ctx: Arc<BackupContext>,
    plan: Arc<Plan>,
    state: Arc<Mutex<State>>,
) -> Result<Next, BackupError> {
    let mut state = state.lock().await;
    if !state.looked_back {
        state.looked_back = true;
        // Missed while every node was down: due at once, under the missed occurrence's claim,
        // so of several nodes that start together one catches up (and, being late, raises it
        // as missed below).
        if let Some(missed) = missed_while_down(&s, &plan, state.next).await {
            state.next = Some(missed);
        }
    }
    let Some(due) = state.next else {
        return Ok(Next::Wait);
    };
    let now = s.now();
    if now < due {
        return Ok(Next::Wait);
    }
    if claim(&s, due, now).await {
        if now - due > MISSED_AFTER {
            raise_backup_alert(&s, &BackupProblem::Missed { due, started: now }).await;
        }
        let _ = run_once(&s, &ctx, &plan, now).await;
    } else {
        tracing::info!(
            due = %palisade_domain::rfc3339(due),
            "the scheduled backup is run by another node"
        );
    }
    state.next = plan.next_after(s.now());
    tracing::info!(next = %next_text(state.next), "next scheduled backup");
    Ok(Next::Wait)
}

/// Claims the occurrence due at `due` for this node (`scheduled_runs`): true when this node
/// runs it. When the database cannot be asked, the node runs it anyway (a second archive is
/// better than none; the backup itself will tell whether the database answers).
async fn claim(s: &Services, due: OffsetDateTime, now: OffsetDateTime) -> bool {
    let claimed = async {
        let mut tx = s.store.begin(SystemScope::new("backup.schedule")).await?;
        let won = scheduled_runs::claim(&mut tx, JOB, due, &node_name(), now).await?;
        if won {
            scheduled_runs::prune(&mut tx, JOB, now - CLAIMS_KEPT).await?;
        }
        tx.commit().await?;
        Ok::<_, palisade_store::StoreError>(won)
    }
    .await;
    claimed.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the scheduled backup could not be claimed; running it here");
        true
    })
}

/// The occurrence that every node missed while none ran: the schedule's latest occurrence
/// before now, when it is after the cluster's latest claimed run and before this node's first.
/// Only the latest is caught up (one archive, not one per missed day). A cluster that never
/// ran the schedule has missed nothing.
async fn missed_while_down(
    s: &Services,
    plan: &Plan,
    first: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let latest = async {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("backup.schedule"))
            .await?;
        scheduled_runs::latest(&mut tx, JOB).await
    }
    .await
    .inspect_err(|e| tracing::warn!(error = %e, "the last scheduled backup could not be read"))
    .ok()
    .flatten()?;
    let previous = plan.at_or_before(s.now())?;
    (previous > latest && first.is_none_or(|f| previous < f)).then_some(previous)
}

/// How this node names itself in its claims (the host name and process id).
fn node_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_owned());
    format!("{host}:{}", std::process::id())
}

fn next_text(t: Option<OffsetDateTime>) -> String {
    t.map_or_else(|| "never".to_owned(), palisade_domain::rfc3339)
}

/// One scheduled backup: create, verify, apply the retention. Problems are logged, counted,
/// audited and raised ([`raise_backup_alert`]) here, and returned.
pub async fn run_once(
    s: &Services,
    ctx: &BackupContext,
    plan: &Plan,
    now: OffsetDateTime,
) -> Result<RunOutcome, BackupError> {
    let archive = plan.dir.join(archive_name(now, !ctx.encryption.is_none()));
    let created = match super::database::private_dirs(&plan.dir) {
        Ok(()) => create(ctx, &s.store, &archive, false, now).await,
        Err(e) => Err(BackupError::new(format!(
            "cannot create {}: {e}",
            plan.dir.display()
        ))),
    };
    let manifest = match created {
        Ok(m) => m,
        Err(e) => {
            audit(
                s,
                ctx,
                "platform.backup.failed",
                serde_json::json!({ "stage": "create", "error": e.0 }),
            )
            .await;
            raise_backup_alert(s, &BackupProblem::Failed { error: e.0.clone() }).await;
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    crate::metrics::backup_succeeded(s.now());
    audit(
        s,
        ctx,
        "platform.backup.created",
        serde_json::json!({
            "file": file_name(&archive), "bytes": bytes, "database": manifest.database,
            "migration_level": manifest.migration_level, "parts": manifest.parts.len(),
            "scheduled": true,
        }),
    )
    .await;
    tracing::info!(file = %archive.display(), bytes, "scheduled backup written");
    if !ctx.decryption.is_configured() {
        tracing::warn!(
            file = %archive.display(),
            "the backup was not verified (set PALISADE_BACKUP_IDENTITY_FILE to verify backups encrypted to recipients); older archives are kept"
        );
        return Ok(RunOutcome {
            archive,
            verified: false,
            deleted: Vec::new(),
        });
    }
    let problems = match verify(ctx, &archive).await {
        Ok(report) => report.problems,
        Err(e) => vec![e.0],
    };
    audit(
        s,
        ctx,
        "platform.backup.verified",
        serde_json::json!({
            "file": file_name(&archive), "ok": problems.is_empty(), "problems": problems,
            "scheduled": true,
        }),
    )
    .await;
    if !problems.is_empty() {
        raise_backup_alert(
            s,
            &BackupProblem::VerificationFailed {
                file: file_name(&archive),
                problems: problems.clone(),
            },
        )
        .await;
        return Err(BackupError::new(format!(
            "the new backup does not verify: {}",
            problems.join("; ")
        )));
    }
    let deleted = apply_retention(&plan.dir, &archive, now, plan.retention_days);
    for d in &deleted {
        tracing::info!(file = %d.display(), "old backup deleted (retention)");
    }
    Ok(RunOutcome {
        archive,
        verified: true,
        deleted,
    })
}

/// Records a scheduled run's outcome (boxed: the future is `Send` for any lifetime, which
/// the worker's spawn needs).
fn audit<'a>(
    s: &'a Services,
    ctx: &'a BackupContext,
    action: &'static str,
    metadata: serde_json::Value,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        if let Err(e) = record(&s.store, ctx.actor, action, metadata, s.now()).await {
            tracing::error!(error = %e, action, "could not record a backup in the audit log");
        }
    })
}

/// When the archive named `name` was taken, from its name.
pub fn taken_at(name: &str) -> Option<OffsetDateTime> {
    let stamp = name.strip_prefix(ARCHIVE_PREFIX)?.get(..16)?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(stamp, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// Deletes the archives in `dir` taken more than `days` before `now`, except `keep` (the
/// newer archive that was just verified). Returns what it deleted.
pub fn apply_retention(dir: &Path, keep: &Path, now: OffsetDateTime, days: u32) -> Vec<PathBuf> {
    if days == 0 {
        return Vec::new();
    }
    let cutoff = now - time::Duration::days(i64::from(days));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let archive = name.ends_with(".tar.zst") || name.ends_with(".tar.zst.age");
        match taken_at(&name) {
            Some(at) if archive && at < cutoff => match std::fs::remove_file(&path) {
                Ok(()) => deleted.push(path),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete an old backup")
                }
            },
            _ => {}
        }
    }
    deleted.sort();
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_runs_at_two_in_the_morning_utc() {
        let plan = Plan {
            dir: PathBuf::new(),
            cron: super::super::parse_schedule("0 2 * * *").unwrap(),
            retention_days: 30,
        };
        let t = time::macros::datetime!(2026-12-06 16:00 UTC);
        assert_eq!(
            plan.next_after(t),
            Some(time::macros::datetime!(2026-12-07 02:00 UTC))
        );
        let at_two = time::macros::datetime!(2026-12-07 02:00 UTC);
        assert_eq!(
            plan.next_after(at_two),
            Some(time::macros::datetime!(2026-12-08 02:00 UTC))
        );
        assert!(super::super::parse_schedule("every night").is_err());
        assert!(super::super::parse_schedule("61 2 * * *").is_err());
    }

    #[test]
    fn archive_names_carry_their_time() {
        let t = time::macros::datetime!(2026-12-06 02:00:05 UTC);
        let name = archive_name(t, true);
        assert_eq!(name, "palisade-backup-20261206T020005Z.tar.zst.age");
        assert_eq!(taken_at(&name), Some(t));
        assert_eq!(taken_at("notes.txt"), None);
    }
}
