//! Database primitives for backups: a consistent SQLite snapshot taken while writers carry on,
//! the newest migration this binary knows, and an inventory (migration level, rows per table)
//! of any database, used to check a restore.
//!
//! The inventory connects on its own (not through the application's pools) because it also
//! reads databases the server does not serve: a backup's scratch copy, a restore's target.
//! On PostgreSQL it reads under `app.system = on`, the policy clause every tenant table's
//! row-level security already grants to system work, so the owner role sees every row.

use crate::db::{pg_options, sqlite_options, Pools};
use crate::{Backend, Result, Store, StoreError};
use sqlx::Connection;
use std::path::Path;

/// The newest migration this binary carries for `backend`.
pub fn latest_migration(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What a database holds: its migration level and the rows of each table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The newest migration applied successfully; 0 when none is.
    pub migration_level: i64,
    /// Migrations recorded as failed (`success = false`), which a healthy database never has.
    pub failed_migrations: Vec<i64>,
    /// Every application table (not `_sqlx_migrations`) with its row count, by name.
    pub tables: Vec<(String, i64)>,
}

impl Inventory {
    /// No table holds a row (a fresh or merely migrated database).
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|(_, n)| *n == 0)
    }

    /// The rows of every table together.
    pub fn rows(&self) -> i64 {
        self.tables.iter().map(|(_, n)| *n).sum()
    }
}

const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

impl Store {
    /// Writes a consistent copy of the SQLite database to `target`, which must not exist, while
    /// the server keeps writing: `VACUUM INTO` reads in one transaction of a reader connection
    /// (WAL), so it never waits for the writer and the writer never waits for it.
    pub async fn sqlite_snapshot(&self, target: &Path) -> Result<()> {
        let Pools::Sqlite { read, .. } = &self.pools else {
            return Err(StoreError::Config(
                "a SQLite snapshot needs a SQLite database".into(),
            ));
        };
        if target.exists() {
            return Err(StoreError::Config(format!(
                "{} already exists: VACUUM INTO needs a new file",
                target.display()
            )));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(target.to_string_lossy().into_owned())
            .execute(read)
            .await?;
        Ok(())
    }
}

/// The inventory of the database at `url` (`sqlite://…` or `postgres://…`). A SQLite file that
/// does not exist, or a PostgreSQL database without tables, is an empty inventory.
pub fn inventory(
    url: &str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Inventory>> + Send + '_>> {
    Box::pin(inventory_of(url))
}

async fn inventory_of(url: &str) -> Result<Inventory> {
    if url.starts_with("sqlite:") {
        let opts = sqlite_options(url)?.create_if_missing(false);
        if !opts.get_filename().exists() {
            return Ok(Inventory::default());
        }
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&mut c)
        .await?;
        let mut inv = Inventory::default();
        for name in names {
            if name == MIGRATIONS_TABLE {
                let (level, failed) = sqlite_migrations(&mut c).await?;
                inv.migration_level = level;
                inv.failed_migrations = failed;
                continue;
            }
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(&name)))
                .fetch_one(&mut c)
                .await?;
            inv.tables.push((name, n));
        }
        c.close().await?;
        Ok(inv)
    } else {
        let mut c = sqlx::PgConnection::connect_with(&pg_options(url)?).await?;
        let mut tx = c.begin().await?;
        sqlx::query("SELECT set_config('app.system', 'on', true)")
            .execute(&mut *tx)
            .await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut inv = Inventory::default();
        for name in names {
            if name == MIGRATIONS_TABLE {
                let rows: Vec<(i64, bool)> =
                    sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
                        .fetch_all(&mut *tx)
                        .await?;
                inv.migration_level = rows
                    .iter()
                    .filter(|(_, ok)| *ok)
                    .map(|(v, _)| *v)
                    .max()
                    .unwrap_or(0);
                inv.failed_migrations =
                    rows.iter().filter(|(_, ok)| !ok).map(|(v, _)| *v).collect();
                continue;
            }
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(&name)))
                .fetch_one(&mut *tx)
                .await?;
            inv.tables.push((name, n));
        }
        tx.rollback().await?;
        c.close().await?;
        Ok(inv)
    }
}

async fn sqlite_migrations(c: &mut sqlx::SqliteConnection) -> Result<(i64, Vec<i64>)> {
    let rows: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(&mut *c)
        .await?;
    let level = rows
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(v, _)| *v)
        .max()
        .unwrap_or(0);
    Ok((
        level,
        rows.iter().filter(|(_, ok)| !ok).map(|(v, _)| *v).collect(),
    ))
}

/// A table name as an SQL identifier (names come from the catalog, not from input; quoting
/// keeps any of them valid).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs `sql` on the PostgreSQL server of `url` outside a transaction (`CREATE DATABASE`,
/// `DROP DATABASE`, creating a role): the backup's scratch databases.
pub fn pg_execute<'a>(
    url: &'a str,
    sql: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(pg_execute_now(url, sql))
}

async fn pg_execute_now(url: &str, sql: &str) -> Result<()> {
    let mut c = sqlx::PgConnection::connect_with(&pg_options(url)?).await?;
    sqlx::query(sql).persistent(false).execute(&mut c).await?;
    c.close().await?;
    Ok(())
}
