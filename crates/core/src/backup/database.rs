//! The database side of backups: PostgreSQL's `pg_dump`/`pg_restore` (run with the password in
//! the environment, never on the command line), scratch databases for `verify`, and putting a
//! SQLite file and the storage files in place for `restore`.

use super::BackupError;
use palisade_store::backup::pg_execute;
use palisade_store::Backend;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// The PostgreSQL client programs, found on `PATH`.
#[derive(Debug, Clone)]
pub struct PgTools {
    pg_dump: PathBuf,
    pg_restore: PathBuf,
}

/// Where a program is on `PATH`, if anywhere.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

impl PgTools {
    /// Finds `pg_dump` and `pg_restore`, or says what to install.
    pub fn find() -> Result<PgTools, BackupError> {
        let find = |name: &str| {
            on_path(name).ok_or_else(|| {
                BackupError::new(format!(
                    "{name} was not found on PATH: PostgreSQL backups need the PostgreSQL client programs (pg_dump, pg_restore) of the server's major version or newer (Debian: apt-get install postgresql-client)"
                ))
            })
        };
        Ok(PgTools {
            pg_dump: find("pg_dump")?,
            pg_restore: find("pg_restore")?,
        })
    }

    /// `pg_dump -Fc` of the database at `url` into `file`: one snapshot of the whole database.
    /// `app.system = on` (the system scope's policy clause) with row security enabled lets the
    /// owner role read every tenant's rows through `FORCE ROW LEVEL SECURITY`.
    pub async fn dump(&self, url: &str, file: &Path) -> Result<(), BackupError> {
        let conn = Connection::parse(url)?;
        let mut cmd = Command::new(&self.pg_dump);
        cmd.args(["--format=custom", "--no-password", "--enable-row-security"])
            .arg("--file")
            .arg(file)
            .arg("--dbname")
            .arg(&conn.url_without_password);
        conn.apply_env(&mut cmd);
        cmd.env("PGOPTIONS", "-c app.system=on");
        run(cmd, "pg_dump").await
    }

    /// `pg_restore` of `file` into the database at `url`, in one transaction: objects the dump
    /// holds are dropped first when they exist (a migrated but empty database), owned by the
    /// restoring role, with their grants to `palisade_app`.
    pub async fn restore(&self, url: &str, file: &Path) -> Result<(), BackupError> {
        let conn = Connection::parse(url)?;
        let mut cmd = Command::new(&self.pg_restore);
        cmd.args([
            "--no-owner",
            "--clean",
            "--if-exists",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
        ])
        .arg("--dbname")
        .arg(&conn.url_without_password)
        .arg(file);
        conn.apply_env(&mut cmd);
        run(cmd, "pg_restore").await
    }
}

async fn run(mut cmd: Command, name: &str) -> Result<(), BackupError> {
    cmd.stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .env_remove("PGPASSFILE");
    let out = cmd
        .output()
        .await
        .map_err(|e| BackupError::new(format!("cannot run {name}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    Err(BackupError::new(format!(
        "{name} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )))
}

/// A PostgreSQL URL split into what may be on a command line and the password.
struct Connection {
    url_without_password: String,
    password: Option<String>,
}

impl Connection {
    fn parse(url: &str) -> Result<Connection, BackupError> {
        let mut u = url::Url::parse(url).map_err(|_| {
            BackupError::new(format!(
                "{} is not a PostgreSQL URL",
                palisade_store::redact_url(url)
            ))
        })?;
        let password = u.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let _ = u.set_password(None);
        Ok(Connection {
            url_without_password: u.to_string(),
            password,
        })
    }

    fn apply_env(&self, cmd: &mut Command) {
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
    }
}

/// A temporary database on a PostgreSQL server, for `verify`. Drop it with
/// [`ScratchDatabase::drop_now`].
pub struct ScratchDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `palisade_verify_<random>` on the server of `server_url` (its role needs
    /// CREATEDB).
    pub async fn create(server_url: &str) -> Result<ScratchDatabase, BackupError> {
        let name = format!("palisade_verify_{}", uuid::Uuid::new_v4().simple());
        pg_execute(server_url, &format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| {
                BackupError::new(format!(
                    "cannot create a scratch database to restore into (the role of PALISADE_DATABASE_MIGRATION_URL, or PALISADE_DATABASE_URL, needs CREATEDB): {e}"
                ))
            })?;
        let mut u = url::Url::parse(server_url)
            .map_err(|_| BackupError::new("PALISADE_DATABASE_URL is not a URL"))?;
        u.set_path(&format!("/{name}"));
        Ok(ScratchDatabase {
            server: server_url.to_owned(),
            name,
            url: u.to_string(),
        })
    }

    pub async fn drop_now(self) {
        if let Err(e) = pg_execute(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
        {
            tracing::warn!(database = %self.name, error = %e, "could not drop the scratch database");
        }
    }
}

/// Makes sure the role the dump grants to exists on the target server (it is cluster-wide, so
/// a new server lacks it). Failing here (no CREATEROLE) is left to `pg_restore` to report.
pub async fn ensure_app_role(url: &str) {
    let sql = "DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'palisade_app') THEN
            CREATE ROLE palisade_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
        END IF; END $$";
    if let Err(e) = pg_execute(url, sql).await {
        tracing::debug!(error = %e, "could not make sure the palisade_app role exists");
    }
}

pub(crate) fn backend_of_kind(kind: &str) -> Backend {
    if kind == "postgres" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// The file a `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// Puts the snapshot `file` in place of the SQLite database at `url` (its WAL and shared-memory
/// files removed): copied beside it first, then renamed, so the target is never half-written.
pub fn restore_sqlite(url: &str, file: &Path) -> Result<(), BackupError> {
    let target = sqlite_path(url);
    let err = |what: &str, e: std::io::Error| {
        BackupError::new(format!("cannot {what} {}: {e}", target.display()))
    };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err("create the directory of", e))?;
    }
    let mut staging = target.clone().into_os_string();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    {
        let mut from = std::fs::File::open(file).map_err(|e| err("read the snapshot for", e))?;
        let mut to = super::archive::create_private(&staging).map_err(|e| err("write", e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| err("write", e))?;
        to.sync_all().map_err(|e| err("write", e))?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = target.clone().into_os_string();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&staging, &target).map_err(|e| err("replace", e))
}

/// Copies the unpacked `storage/` tree of `work` into `storage_dir` (directories 0700, files
/// 0600, like the storage writes them). Returns the number of files.
pub fn restore_storage(work: &Path, storage_dir: &Path) -> Result<usize, BackupError> {
    let from = work.join("storage");
    let mut n = 0;
    if !from.is_dir() {
        return Ok(0);
    }
    let err = |p: &Path, e: std::io::Error| {
        BackupError::new(format!("cannot restore the file {}: {e}", p.display()))
    };
    let mut stack = vec![from.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| err(&dir, e))? {
            let entry = entry.map_err(|e| err(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| err(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&from).unwrap_or(&path);
            let target = storage_dir.join(rel);
            if let Some(parent) = target.parent() {
                private_dirs(parent).map_err(|e| err(parent, e))?;
            }
            let _ = std::fs::remove_file(&target);
            let mut src = std::fs::File::open(&path).map_err(|e| err(&path, e))?;
            let mut dst = super::archive::create_private(&target).map_err(|e| err(&target, e))?;
            std::io::copy(&mut src, &mut dst).map_err(|e| err(&target, e))?;
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) fn private_dirs(p: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p)
}
