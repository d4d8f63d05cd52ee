//! Backups: `palisade backup create | verify | restore` and the scheduled backups of
//! `palisade serve` (docs/operations.md, "Backups").
//!
//! Threat: a backup is a copy of every tenant's data outside the database's access controls.
//! Stolen, it must be unreadable; altered or damaged, it must be noticed before anyone relies on
//! it; and a backup nobody has restored is a hope, not a backup. Invariants:
//! - An archive is encrypted with age to the operator's X25519 recipients or passphrase; an
//!   unencrypted one is written only when explicitly asked for (`--unencrypted`), never by the
//!   schedule.
//! - The manifest inside names the SHA-256 of every part; `verify` recomputes them, restores the
//!   database into a scratch database (a temporary SQLite file, or a temporary PostgreSQL
//!   database created and dropped), checks the migration level, counts the rows and verifies
//!   every audit hash chain. Scheduled runs verify every archive they write, and an older
//!   archive is deleted only after a newer one has been verified.
//! - Passwords never reach a command line: `pg_dump`/`pg_restore` get the URL without its
//!   password and the password in `PGPASSWORD`.
//! - Every backup, verification and restore is a record in the platform's audit chain.
//!
//! Key rings (`PALISADE_SIGNING_KEYS`, `PALISADE_ENCRYPTION_KEYS`) are not in the archive: the
//! secrets stored encrypted in the database need the same encryption key ring after a restore.

pub mod archive;
pub mod database;
mod keys;
pub mod schedule;

pub use keys::*;

use age::secrecy::{ExposeSecret as _, SecretString};
use archive::Manifest;
use palisade_store::audit::{self as audit_log, AuditEntry, ChainReport};
use palisade_store::backup::{inventory, latest_migration, Inventory};
use palisade_store::{Backend, DatabaseSettings, Store, SystemScope};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use time::OffsetDateTime;

pub use database::PgTools;
/// The secret type age takes passphrases as.
pub type AgeSecret = SecretString;

/// A backup operation that could not be carried out, in words an operator can act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(pub String);

impl BackupError {
    pub fn new(message: impl Into<String>) -> Self {
        BackupError(message.into())
    }
}

impl From<palisade_store::StoreError> for BackupError {
    fn from(e: palisade_store::StoreError) -> Self {
        BackupError(format!("database: {e}"))
    }
}

/// Parses a cron schedule (`minute hour day-of-month month day-of-week`, UTC).
pub fn parse_schedule(text: &str) -> Result<croner::Cron, String> {
    croner::Cron::from_str(text.trim()).map_err(|e| {
        format!("PALISADE_BACKUP_SCHEDULE={text:?} is not a cron schedule like \"0 2 * * *\": {e}")
    })
}

/// Everything a backup operation needs: where the database and the files are, and the keys.
#[derive(Clone)]
pub struct BackupContext {
    pub database: DatabaseSettings,
    pub storage_dir: PathBuf,
    pub encryption: Encryption,
    pub decryption: Decryption,
    /// Who the audit records name: `cli` or `backup-scheduler`.
    pub actor: &'static str,
}

impl BackupContext {
    fn backend(&self) -> Result<Backend, BackupError> {
        Ok(self.database.backend()?)
    }

    /// The URL with the owner's rights (migrations, dumps, scratch databases).
    fn admin_url(&self) -> &str {
        self.database
            .migration_url
            .as_deref()
            .unwrap_or(&self.database.url)
    }
}

/// The default archive name for a backup taken at `at`.
pub fn archive_name(at: OffsetDateTime, encrypted: bool) -> String {
    let stamp = at
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    format!(
        "{}{stamp}{}",
        schedule::ARCHIVE_PREFIX,
        if encrypted {
            ".tar.zst.age"
        } else {
            ".tar.zst"
        }
    )
}

/// Takes a consistent snapshot of the database (and the storage directory) and writes it to
/// `out`, which must not exist. `store` is the running server's (or the CLI's) connection.
pub async fn create(
    ctx: &BackupContext,
    store: &Store,
    out: &Path,
    allow_unencrypted: bool,
    now: OffsetDateTime,
) -> Result<Manifest, BackupError> {
    if ctx.encryption.is_none() && !allow_unencrypted {
        return Err(BackupError::new(
            "refusing to write an unencrypted backup: set PALISADE_BACKUP_RECIPIENTS (age public keys) or PALISADE_BACKUP_PASSPHRASE, or pass --unencrypted",
        ));
    }
    if out.exists() {
        return Err(BackupError::new(format!(
            "{} already exists: choose another --output",
            out.display()
        )));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The scratch copy lives beside the archive: same filesystem, and the operator chose a
    // place with room for a backup.
    let scratch = tempfile::Builder::new()
        .prefix(".palisade-backup-")
        .tempdir_in(parent)
        .map_err(|e| BackupError::new(format!("cannot write in {}: {e}", parent.display())))?;
    let backend = ctx.backend()?;
    let (db_file, db_part, level) = match backend {
        Backend::Sqlite => {
            let file = scratch.path().join(archive::SQLITE_PART);
            store.sqlite_snapshot(&file).await?;
            let level = inventory(&format!("sqlite://{}", file.display()))
                .await?
                .migration_level;
            (file, archive::SQLITE_PART, level)
        }
        Backend::Postgres => {
            let file = scratch.path().join(archive::POSTGRES_PART);
            let tools = PgTools::find()?;
            tools.dump(ctx.admin_url(), &file).await?;
            let level = inventory(ctx.admin_url()).await?.migration_level;
            (file, archive::POSTGRES_PART, level)
        }
    };
    let head = Manifest {
        format: archive::FORMAT.into(),
        palisade_version: env!("CARGO_PKG_VERSION").into(),
        migration_level: level,
        created_at: palisade_domain::rfc3339(now),
        database: match backend {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
        },
        parts: Vec::new(),
    };
    let (out_path, enc, storage) = (
        out.to_path_buf(),
        ctx.encryption.clone(),
        ctx.storage_dir.clone(),
    );
    let manifest = tokio::task::spawn_blocking(move || {
        archive::write(&out_path, &enc, &db_file, db_part, &storage, head)
    })
    .await
    .map_err(|e| BackupError::new(format!("the archive writer stopped: {e}")))??;
    drop(scratch);
    Ok(manifest)
}

/// What `verify` found. `problems` empty means the backup restores and is intact.
#[derive(Debug)]
pub struct VerifyReport {
    pub manifest: Manifest,
    pub encrypted: bool,
    pub storage_files: usize,
    pub inventory: Inventory,
    pub chains: Vec<ChainReport>,
    pub problems: Vec<String>,
}

/// Checks every hash, restores the database into a scratch database, checks the migration
/// level, counts the rows and verifies every audit hash chain. An archive that cannot be opened
/// at all is an error; everything else that is wrong is listed in `problems`.
pub fn verify<'a>(
    ctx: &'a BackupContext,
    file: &'a Path,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<VerifyReport, BackupError>> + Send + 'a>,
> {
    // Boxed: the future is then `Send` for any lifetime, which the scheduled worker needs.
    Box::pin(verify_inner(ctx, file))
}

async fn verify_inner(ctx: &BackupContext, file: &Path) -> Result<VerifyReport, BackupError> {
    let work = scratch_dir(file)?;
    let unpacked = unpack(ctx, file, work.path()).await?;
    let mut problems = unpacked.problems;
    let manifest = unpacked.manifest;
    let db_file = work.path().join(manifest.database_part());
    let (inventory, chains) = if problems.iter().any(|p| p.contains("database.")) {
        (Inventory::default(), Vec::new())
    } else {
        match manifest.database.as_str() {
            "sqlite" => {
                let url = format!("sqlite://{}", db_file.display());
                check_restored(&url, &manifest, &mut problems).await?
            }
            "postgres" => {
                let server = ctx.admin_url();
                if !server.starts_with("postgres") {
                    return Err(BackupError::new(
                        "this is a PostgreSQL backup: verifying it restores it into a scratch database, so PALISADE_DATABASE_URL must name a PostgreSQL server (its role needs CREATEDB)",
                    ));
                }
                let tools = PgTools::find()?;
                let scratch = database::ScratchDatabase::create(server).await?;
                let restored = tools.restore(&scratch.url, &db_file).await;
                let checked = match restored {
                    Ok(()) => check_restored(&scratch.url, &manifest, &mut problems).await,
                    Err(e) => {
                        problems.push(format!("the database dump does not restore: {e}"));
                        Ok((Inventory::default(), Vec::new()))
                    }
                };
                scratch.drop_now().await;
                checked?
            }
            other => {
                problems.push(format!("unknown database kind {other:?} in the manifest"));
                (Inventory::default(), Vec::new())
            }
        }
    };
    Ok(VerifyReport {
        manifest,
        encrypted: unpacked.encrypted,
        storage_files: unpacked.storage_files,
        inventory,
        chains,
        problems,
    })
}

fn scratch_dir(near: &Path) -> Result<tempfile::TempDir, BackupError> {
    // Beside the archive when possible (room for its contents), else the system's temp dir.
    let parent = near
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".palisade-restore-")
        .tempdir_in(parent)
        .or_else(|_| tempfile::tempdir())
        .map_err(|e| BackupError::new(format!("cannot create a scratch directory: {e}")))
}

async fn unpack(
    ctx: &BackupContext,
    file: &Path,
    into: &Path,
) -> Result<archive::Unpacked, BackupError> {
    let (file, into, dec) = (
        file.to_path_buf(),
        into.to_path_buf(),
        ctx.decryption.clone(),
    );
    tokio::task::spawn_blocking(move || archive::unpack(&file, &dec, &into))
        .await
        .map_err(|e| BackupError::new(format!("the archive reader stopped: {e}")))?
}

/// Checks a restored database: migration level, rows, audit chains.
async fn check_restored(
    url: &str,
    manifest: &Manifest,
    problems: &mut Vec<String>,
) -> Result<(Inventory, Vec<ChainReport>), BackupError> {
    let inv = inventory(url).await?;
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    if inv.migration_level != manifest.migration_level {
        problems.push(format!(
            "the restored database is at migration {} but the manifest says {}",
            inv.migration_level, manifest.migration_level
        ));
    }
    let latest = latest_migration(backend);
    if inv.migration_level > latest {
        problems.push(format!(
            "the backup is at migration {} but this Palisade knows migrations up to {latest}: restore it with a newer version",
            inv.migration_level
        ));
    }
    if !inv.failed_migrations.is_empty() {
        problems.push(format!(
            "migrations recorded as failed: {:?}",
            inv.failed_migrations
        ));
    }
    if inv.tables.is_empty() {
        problems.push("the restored database has no tables".into());
        return Ok((inv, Vec::new()));
    }
    let store = Store::connect(&DatabaseSettings {
        url: url.to_owned(),
        migration_url: None,
        max_connections: 2,
    })
    .await?;
    let chains = verify_chains(&store).await;
    store.close().await;
    let chains = chains?;
    for c in &chains {
        for p in &c.problems {
            let name = if c.chain_id.is_nil() {
                "the platform's audit chain".to_owned()
            } else {
                format!("audit chain {}", c.chain_id)
            };
            problems.push(format!("{name}: {p}"));
        }
    }
    Ok((inv, chains))
}

fn verify_chains(
    store: &Store,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<ChainReport>, BackupError>> + Send + '_>,
> {
    Box::pin(async move {
        let mut tx = store.begin_read(SystemScope::new("backup.verify")).await?;
        Ok(audit_log::verify(&mut tx, None).await?)
    })
}

/// Where `restore` puts a backup.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    /// `sqlite://…` or `postgres://…` (a role that may create the tables).
    pub database_url: String,
    pub storage_dir: PathBuf,
    /// Restore into a database or storage directory that is not empty.
    pub force: bool,
}

/// What `restore` did.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    pub inventory: Inventory,
    pub storage_files: usize,
}

/// Restores `file` into `target`: refused when the archive does not verify its hashes, or when
/// the target database (or storage directory) is not empty and `force` is not set.
pub async fn restore(
    ctx: &BackupContext,
    file: &Path,
    target: &RestoreTarget,
    now: OffsetDateTime,
) -> Result<RestoreReport, BackupError> {
    let work = scratch_dir(file)?;
    let unpacked = unpack(ctx, file, work.path()).await?;
    if !unpacked.problems.is_empty() {
        return Err(BackupError::new(format!(
            "refusing to restore a backup that does not match its manifest:\n  - {}",
            unpacked.problems.join("\n  - ")
        )));
    }
    let manifest = unpacked.manifest;
    let url = target.database_url.as_str();
    let target_kind = if url.starts_with("sqlite:") {
        "sqlite"
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgres"
    } else {
        return Err(BackupError::new(format!(
            "--database-url {}: use sqlite://PATH or postgres://…",
            palisade_store::redact_url(url)
        )));
    };
    if target_kind != manifest.database {
        return Err(BackupError::new(format!(
            "this is a {} backup; it restores only into a {} database (the target is {target_kind})",
            manifest.database, manifest.database
        )));
    }
    if manifest.migration_level > latest_migration(database::backend_of_kind(target_kind)) {
        return Err(BackupError::new(format!(
            "the backup is at migration {}, newer than this Palisade knows: restore it with a newer version",
            manifest.migration_level
        )));
    }
    let before = inventory(url).await?;
    if !before.is_empty() && !target.force {
        return Err(BackupError::new(format!(
            "the target database is not empty ({} rows): restore into an empty database, or pass --force to replace its contents",
            before.rows()
        )));
    }
    let storage_in_use = std::fs::read_dir(&target.storage_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if storage_in_use && !target.force {
        return Err(BackupError::new(format!(
            "the storage directory {} is not empty: restore into an empty one (--storage-dir), or pass --force",
            target.storage_dir.display()
        )));
    }
    let db_file = work.path().join(manifest.database_part());
    match target_kind {
        "sqlite" => database::restore_sqlite(url, &db_file)?,
        _ => {
            let tools = PgTools::find()?;
            database::ensure_app_role(url).await;
            tools.restore(url, &db_file).await?;
        }
    }
    let storage_files = database::restore_storage(work.path(), &target.storage_dir)?;
    let inventory = inventory(url).await?;
    let store = Store::connect(&DatabaseSettings {
        url: url.to_owned(),
        migration_url: None,
        max_connections: 2,
    })
    .await?;
    let recorded = record(
        &store,
        ctx.actor,
        "platform.backup.restored",
        serde_json::json!({
            "file": file_name(file),
            "backup_created_at": manifest.created_at,
            "database": manifest.database,
            "migration_level": manifest.migration_level,
            "rows": inventory.rows(),
            "storage_files": storage_files,
            "forced": target.force && !before.is_empty(),
        }),
        now,
    )
    .await;
    store.close().await;
    recorded?;
    Ok(RestoreReport {
        manifest,
        inventory,
        storage_files,
    })
}

/// The archive's file name, for audit records (no directories: they are the machine's).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Appends a record of a backup operation to the platform's audit chain of `store`.
pub async fn record(
    store: &Store,
    actor: &str,
    action: &str,
    metadata: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), BackupError> {
    let mut tx = store.begin(SystemScope::new("backup.audit")).await?;
    let entry = AuditEntry {
        action: action.to_owned(),
        actor_role: Some(actor.to_owned()),
        request_id: Some(actor.to_owned()),
        target_type: Some("backup".into()),
        metadata,
        ..AuditEntry::default()
    };
    audit_log::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    Ok(())
}
