//! The two-backend connection facade.

use crate::query::{Arg, Query};
use crate::scope::Scope;
use crate::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, FromRow, Postgres, Sqlite};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the database is. `Debug` hides passwords in the URLs.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `sqlite://path` or `postgres://…`: the application's connections.
    pub url: String,
    /// Optional owner connection for migrations (PostgreSQL); defaults to `url`.
    pub migration_url: Option<String>,
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field(
                "migration_url",
                &self.migration_url.as_deref().map(redact_url),
            )
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl DatabaseSettings {
    pub fn backend(&self) -> Result<Backend> {
        backend_of(&self.url)
    }
}

fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in {}: use sqlite://PATH or postgres://…",
            redact_url(url)
        )))
    }
}

#[derive(Clone)]
pub(crate) enum Pools {
    /// One writer connection serialises writes (SQLite allows one writer at a time; queueing in
    /// the pool is cheaper than SQLITE_BUSY retries); readers run in parallel under WAL.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        wal: Arc<WalCheckpoints>,
    },
    Postgres {
        pool: PgPool,
        /// For connections outside the pool (the realtime listener's).
        options: Box<PgConnectOptions>,
    },
}

/// Connections of the application's pools: `active` are checked out, `idle` wait in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    pub active: u64,
    pub idle: u64,
}

/// The application's database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Pools,
}

pub(crate) fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // Reads go through a memory map (shared by every connection; it costs address
        // space, not resident memory, until touched), so the page cache stays modest: 8 MB
        // (SQLite's default is 2 MB). A 32 MB cache made ingestion slower, not faster: SQLite
        // walks the cache when a transaction ends, and at 32 MB that walk was the largest
        // single cost of a webhook batch (measured 4.4–5.3k messages/s against 6.8k at 2 or
        // 8 MB). The read pool overrides this with the default (see `Store::connect`).
        .pragma("cache_size", "-8192")
        .pragma("mmap_size", "268435456")
        .pragma("temp_store", "memory")
        .disable_statement_logging())
}

/// SQLite: how many WAL pages the writer lets pile up before it copies them back into the
/// database file itself, at the end of a commit. A backstop: on a server the
/// [`Store::spawn_wal_checkpointer`] task does that copying, on its own connection and thread,
/// after each commit; the writer gets to it only when that task falls behind or is not running
/// (CLI commands, tests), or when readers kept the WAL from starting over. 20,000 pages are
/// ≈ 80 MB of WAL file at most (SQLite's default is 1,000 pages, ≈ 4 MB).
pub const WRITER_WAL_AUTOCHECKPOINT: u32 = 20_000;

/// The checkpointer's pause after each checkpoint: the commits of that time are copied back
/// together (a page written by several of them is copied once).
const WAL_CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// SQLite: what the WAL checkpointer needs. With SQLite's default, the writer copied the WAL
/// back into the database file (and synced it) every ≈ 1,000 pages, inside the commit that
/// crossed the mark: under the ingest benchmark that was every commit or two, and every write
/// waited for it while the machine's other core idled. A passive checkpoint on a connection of
/// its own copies the same pages without holding up the writer or readers (measured, 60 s
/// ingest runs on one machine, 2026-12-07: ≈ 3,700 → ≈ 5,000 messages/s; the writer's
/// threshold raised alone gave ≈ 4,100).
pub(crate) struct WalCheckpoints {
    options: SqliteConnectOptions,
    /// Notified by each commit of the writer (a permit is kept when the task is busy, so
    /// commits meanwhile cost one more checkpoint, not one each).
    written: Notify,
}

pub(crate) fn pg_options(url: &str) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)?.disable_statement_logging())
}

/// The role every application connection acts as on PostgreSQL (see the first migration).
pub const PG_APP_ROLE: &str = "palisade_app";

impl Store {
    /// Opens the application's connections. On PostgreSQL each connection switches to the
    /// `palisade_app` role when its login role may, so row-level security binds it even when the
    /// login role owns the tables.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store> {
        let pools = match settings.backend()? {
            Backend::Sqlite => {
                let opts = sqlite_options(&settings.url)?;
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        opts.clone()
                            .pragma("wal_autocheckpoint", WRITER_WAL_AUTOCHECKPOINT.to_string()),
                    )
                    .await?;
                // Readers keep SQLite's default 2 MB page cache: in WAL mode a reader drops its
                // cache when it starts reading after another connection wrote, which every
                // write does; their reads are served from the shared memory map.
                let read = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections.max(2))
                    .connect_with(opts.clone().read_only(false).pragma("cache_size", "-2000"))
                    .await?;
                Pools::Sqlite {
                    read,
                    write,
                    wal: Arc::new(WalCheckpoints {
                        options: opts,
                        written: Notify::new(),
                    }),
                }
            }
            Backend::Postgres => {
                let options = pg_options(&settings.url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            let may: bool = sqlx::query_scalar(
                                "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                                 THEN pg_has_role(session_user, $1, 'MEMBER') ELSE false END",
                            )
                            .bind(PG_APP_ROLE)
                            .fetch_one(&mut *conn)
                            .await?;
                            if may {
                                sqlx::query("SET ROLE palisade_app")
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            // sqlx keeps every statement prepared per connection, and after five
                            // executions PostgreSQL may switch a statement to a generic plan
                            // chosen once. A generic plan picked while a table was small stays
                            // a sequential scan (or a scan of the tenant) as it grows (measured:
                            // inbound processing fell from 2.7k to 0.8k messages/s within
                            // 20 s). Planning each execution costs far less. The setting also
                            // applies to the checks foreign keys run per inserted row, which is
                            // why hot tables keep those few (migration 0012).
                            // The ingest's insert of messages plans otherwise: see [`Plans`].
                            sqlx::query("SET plan_cache_mode = force_custom_plan")
                                .execute(&mut *conn)
                                .await?;
                            // No JIT compilation: its cost threshold looks at the planner's
                            // estimate, not at what a statement will take, and a statement
                            // estimated dear (a year of analytics, one index probe per day)
                            // spent 136 of its 215 ms compiling expressions it then ran in
                            // 80 ms (auto_explain, 2026-12-07). Palisade's statements are short;
                            // none gains from it.
                            sqlx::query("SET jit = off").execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options.clone())
                    .await?;
                Pools::Postgres {
                    pool,
                    options: Box::new(options),
                }
            }
        };
        Ok(Store { pools })
    }

    /// Applies pending migrations (forward-only), as the migration role when one is configured.
    pub async fn migrate(settings: &DatabaseSettings) -> Result<()> {
        let url = settings.migration_url.as_deref().unwrap_or(&settings.url);
        match backend_of(url)? {
            Backend::Sqlite => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(sqlite_options(url)?)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(pg_options(url)?)
                    .await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                pool.close().await;
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A read-write transaction for `scope`.
    pub async fn begin<S: Scope>(&self, scope: S) -> Result<Tx<S>> {
        self.open(scope, true).await
    }

    /// A transaction for reads only (on SQLite it does not queue behind the writer).
    pub async fn begin_read<S: Scope>(&self, scope: S) -> Result<Tx<S>> {
        self.open(scope, false).await
    }

    async fn open<S: Scope>(&self, scope: S, write: bool) -> Result<Tx<S>> {
        // The transaction's span, from waiting for a connection to commit or rollback (it ends
        // when the `Tx` is dropped). Debug level: it exists only for traces
        // (`PALISADE_OTLP_ENDPOINT`), where it is a child of the request or job that opened it.
        let span = tracing::debug_span!(
            "db.transaction",
            otel.kind = "client",
            db.system.name = match self.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgresql",
            },
            db.transaction.access = if write { "read_write" } else { "read_only" },
            db.scope = if scope.tenant().is_some() {
                "tenant"
            } else {
                "system"
            },
            db.transaction.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let mut wal = None;
        let inner = match &self.pools {
            Pools::Sqlite {
                read,
                write: w,
                wal: checkpoints,
            } => {
                let pool = if write {
                    wal = Some(checkpoints.clone());
                    w
                } else {
                    read
                };
                TxInner::Sqlite(pool.begin().await.map_err(StoreError::from_sqlx)?)
            }
            Pools::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
                let tenant = scope.tenant().map(|t| t.to_string()).unwrap_or_default();
                let system = if scope.tenant().is_none() { "on" } else { "" };
                sqlx::query("SELECT set_config('app.tenant_id', $1, true), set_config('app.system', $2, true)")
                    .bind(tenant)
                    .bind(system)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                TxInner::Postgres(tx)
            }
        };
        if scope.tenant().is_none() {
            tracing::trace!(scope = %scope.describe(), "system scope opened");
        }
        Ok(Tx {
            inner,
            scope,
            span,
            wal,
        })
    }

    /// SQLite: starts the task that checkpoints the WAL after the writer's commits (see
    /// [`WalCheckpoints`]); `None` on PostgreSQL. For a long-running server; abort the task
    /// before [`Store::close`]. Without it the writer checkpoints by itself, later
    /// ([`WRITER_WAL_AUTOCHECKPOINT`]).
    pub fn spawn_wal_checkpointer(&self) -> Option<tokio::task::JoinHandle<()>> {
        let Pools::Sqlite { wal, .. } = &self.pools else {
            return None;
        };
        let wal = wal.clone();
        Some(tokio::spawn(async move {
            let mut conn: Option<sqlx::SqliteConnection> = None;
            loop {
                wal.written.notified().await;
                if conn.is_none() {
                    match wal.options.connect().await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            tracing::warn!(error = %e, "the WAL checkpointer cannot open the database; the writer checkpoints instead");
                        }
                    }
                }
                if let Some(c) = conn.as_mut() {
                    // (busy, pages in the WAL, pages copied back): busy when another
                    // checkpoint held the lock; it copied what it could.
                    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut *c)
                        .await
                    {
                        Ok((busy, wal_pages, copied)) => {
                            tracing::trace!(busy, wal_pages, copied, "WAL checkpoint");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "WAL checkpoint failed; retried after the next commit");
                            conn = None;
                        }
                    }
                }
                tokio::time::sleep(WAL_CHECKPOINT_PAUSE).await;
            }
        }))
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        match &self.pools {
            Pools::Sqlite { read, .. } => {
                sqlx::query("SELECT 1").execute(read).await?;
            }
            Pools::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// On PostgreSQL, why the application's role would escape row-level security (superuser or
    /// BYPASSRLS, on the login role or the role it acts as), or `None` when it is safe.
    pub async fn unsafe_role_reason(&self) -> Result<Option<String>> {
        let Pools::Postgres { pool, .. } = &self.pools else {
            return Ok(None);
        };
        let rows: Vec<(String, bool, bool)> = sqlx::query_as(
            "SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles
             WHERE rolname IN (session_user, current_user)",
        )
        .fetch_all(pool)
        .await?;
        for (name, sup, bypass) in rows {
            if sup {
                return Ok(Some(format!(
                    "database role {name} is a superuser, which bypasses row-level security; \
                     connect as a role without SUPERUSER (see README, Production)"
                )));
            }
            if bypass {
                return Ok(Some(format!(
                    "database role {name} has BYPASSRLS; connect as a role without it \
                     (ALTER ROLE {name} NOBYPASSRLS)"
                )));
            }
        }
        Ok(None)
    }

    /// The application's connections, open and idle, across its pools (SQLite: the writer and
    /// the readers), for the operator's metrics.
    pub fn pool_connections(&self) -> PoolConnections {
        let of = |size: u32, idle: usize| PoolConnections {
            active: u64::from(size).saturating_sub(idle as u64),
            idle: idle as u64,
        };
        match &self.pools {
            Pools::Sqlite { read, write, .. } => {
                let (r, w) = (
                    of(read.size(), read.num_idle()),
                    of(write.size(), write.num_idle()),
                );
                PoolConnections {
                    active: r.active + w.active,
                    idle: r.idle + w.idle,
                }
            }
            Pools::Postgres { pool, .. } => of(pool.size(), pool.num_idle()),
        }
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { read, write, .. } => {
                write.close().await;
                read.close().await;
            }
            Pools::Postgres { pool, .. } => pool.close().await,
        }
    }
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// How PostgreSQL plans the statements of a transaction (see [`Tx::plans`]).
///
/// Connections plan every execution afresh (`plan_cache_mode = force_custom_plan`, set when
/// they connect): PostgreSQL otherwise settles on one generic plan per statement and
/// connection, and one made while a table was small and had no statistics stayed a scan as
/// the table grew. That includes the check a foreign key runs for every inserted row, where
/// planning is most of the cost: under the ingest load (`bench/messaging-load.sh`,
/// `pg_stat_statements` with `track = all`, 2026-12-07) the check of each new message against
/// its conversation spent 36 µs planning and 6 µs running, a fifth of PostgreSQL's time.
///
/// So the ingest's insert of messages runs under [`Plans::Generic`]: the insert reads its rows
/// from `unnest` (nothing to choose) and the check is a probe of `(tenant_id, id,
/// connection_id)`, which only the conversation's unique keys answer outright (the store test
/// `messages::the_conversation_check_plans_a_key_probe` holds the plan to that, on a new
/// database and an analysed one). Nothing else: the generic plan of a join or a filter picked on
/// an empty database reads every row once the tables have grown (seen in `EXPLAIN` for the
/// campaign reply stamp, and for a contact's key check, which a tenant-first index ties with).
/// One edge remains: a table vacuumed while empty plans the check as a scan until its next
/// `ANALYZE`, which autovacuum runs within the first fifty rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Each execution planned with its values: the connections' setting.
    Custom,
    /// One plan per statement and connection, made at its first execution and kept
    /// (`force_generic_plan`). Go back to [`Plans::Custom`] right after the statement.
    Generic,
}

impl Plans {
    /// The statement that switches a PostgreSQL transaction to these plans until it ends.
    fn statement(self) -> &'static str {
        match self {
            Plans::Custom => "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)",
            Plans::Generic => "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)",
        }
    }
}

/// A transaction bound to a scope. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<S> {
    inner: TxInner,
    scope: S,
    /// `db.transaction`; its outcome is recorded by [`Tx::commit`] (a dropped `Tx` has none:
    /// it rolled back).
    span: tracing::Span,
    /// SQLite's writer: told of each commit, for the WAL checkpointer.
    wal: Option<Arc<WalCheckpoints>>,
}

/// A row type that decodes on both databases.
pub trait FromAnyRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> FromAnyRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// SQLite stores times as text and compares them as text, so every time is written in one
/// fixed-width form (UTC, nine fractional digits): with sqlx's default form a whole second
/// (`…:02Z`) would sort after a fraction of that second (`…:02.665Z`). sqlx reads it back as
/// RFC 3339.
fn sqlite_time(v: Option<time::OffsetDateTime>) -> Option<String> {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    v.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(FORMAT).ok())
}

/// A list argument on SQLite: a JSON array (times in the stored form), for `json_each`.
fn sqlite_list(a: Arg) -> Option<String> {
    let v = match a {
        Arg::UuidList(v) => serde_json::to_value(v),
        Arg::TextList(v) => serde_json::to_value(v),
        Arg::TimeList(v) => {
            serde_json::to_value(v.into_iter().map(sqlite_time).collect::<Vec<_>>())
        }
        Arg::I64List(v) => serde_json::to_value(v),
        Arg::BytesList(v) => serde_json::to_value(v.iter().map(hex::encode).collect::<Vec<_>>()),
        _ => return None,
    };
    v.ok().map(|v| v.to_string())
}

/// Binds every argument to an sqlx query. The arguments both databases bind alike are here;
/// the caller names the variable (`$qv`) and adds the arms for times and lists.
macro_rules! bind_all {
    ($qv:ident; $q:expr, $args:expr, { $($arms:tt)* }) => {{
        let mut $qv = $q;
        for a in $args {
            $qv = match a {
                Arg::Uuid(v) => $qv.bind(v),
                Arg::Text(v) => $qv.bind(v),
                Arg::I64(v) => $qv.bind(v),
                Arg::Bool(v) => $qv.bind(v),
                Arg::Json(v) => $qv.bind(v.map(sqlx::types::Json)),
                Arg::Bytes(v) => $qv.bind(v),
                $($arms)*
            };
        }
        $qv
    }};
}

/// PostgreSQL: times as `timestamptz`, lists as arrays.
macro_rules! bind_pg {
    ($q:expr, $args:expr) => {
        bind_all!(q; $q, $args, {
            Arg::Time(v) => q.bind(v),
            Arg::UuidList(v) => q.bind(v),
            Arg::TextList(v) => q.bind(v),
            Arg::TimeList(v) => q.bind(v),
            Arg::I64List(v) => q.bind(v),
            Arg::BytesList(v) => q.bind(v),
        })
    };
}

/// SQLite: times in the fixed-width text form, lists as JSON arrays.
macro_rules! bind_sqlite {
    ($q:expr, $args:expr) => {
        bind_all!(q; $q, $args, {
            Arg::Time(v) => q.bind(sqlite_time(v)),
            list @ (Arg::UuidList(_)
            | Arg::TextList(_)
            | Arg::TimeList(_)
            | Arg::I64List(_)
            | Arg::BytesList(_)) => {
                q.bind(sqlite_list(list))
            }
        })
    };
}

impl<S: Scope> Tx<S> {
    pub fn scope(&self) -> &S {
        &self.scope
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// What ends a `SELECT` whose rows are locked until the transaction ends, for a
    /// read-modify-write: `FOR UPDATE` on PostgreSQL, nothing on SQLite (whose write
    /// transactions already run one at a time).
    pub fn row_lock(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Plans the statements that follow this way until the next call or the end of the
    /// transaction (see [`Plans`]). Nothing on SQLite, which plans a statement once when it is
    /// prepared.
    pub async fn plans(&mut self, plans: Plans) -> Result<()> {
        if let TxInner::Postgres(tx) = &mut self.inner {
            sqlx::query(plans.statement())
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    /// Runs a statement; returns the number of rows it touched.
    pub async fn execute(&mut self, q: Query) -> Result<u64> {
        let n = match &mut self.inner {
            TxInner::Sqlite(tx) => bind_sqlite!(sqlx::query(&q.sql), q.args)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected(),
            TxInner::Postgres(tx) => bind_pg!(sqlx::query(&q.sql), q.args)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected(),
        };
        Ok(n)
    }

    pub async fn fetch_optional<T: FromAnyRow>(&mut self, q: Query) -> Result<Option<T>> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => bind_sqlite!(sqlx::query_as::<_, T>(&q.sql), q.args)
                .fetch_optional(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx),
            TxInner::Postgres(tx) => bind_pg!(sqlx::query_as::<_, T>(&q.sql), q.args)
                .fetch_optional(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx),
        }
    }

    pub async fn fetch_one<T: FromAnyRow>(&mut self, q: Query) -> Result<T> {
        self.fetch_optional(q)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn fetch_all<T: FromAnyRow>(&mut self, q: Query) -> Result<Vec<T>> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => bind_sqlite!(sqlx::query_as::<_, T>(&q.sql), q.args)
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx),
            TxInner::Postgres(tx) => bind_pg!(sqlx::query_as::<_, T>(&q.sql), q.args)
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx),
        }
    }

    pub async fn commit(self) -> Result<()> {
        let outcome = match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await.map_err(StoreError::from_sqlx),
            TxInner::Postgres(tx) => tx.commit().await.map_err(StoreError::from_sqlx),
        };
        if let (Ok(()), Some(wal)) = (&outcome, &self.wal) {
            wal.written.notify_one();
        }
        match &outcome {
            Ok(()) => self.span.record("db.transaction.outcome", "commit"),
            Err(_) => self
                .span
                .record("db.transaction.outcome", "commit_failed")
                .record("otel.status_code", "error"),
        };
        outcome
    }
}

impl Tx<crate::TenantScope> {
    /// The row `id` of `table` in this transaction's tenant: `SELECT {columns} FROM {table}
    /// WHERE tenant_id = $1 AND id = $2 {lock}` (`lock`: "" or [`Tx::row_lock`]).
    pub async fn find_row<R: FromAnyRow>(
        &mut self,
        table: &str,
        columns: &str,
        id: impl crate::query::IntoArg,
        lock: &str,
    ) -> Result<Option<R>> {
        let tenant = self.scope().tenant_id();
        self.fetch_optional(
            Query::new(format!(
                "SELECT {columns} FROM {table} WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await
    }

    /// The rows of `table` in this transaction's tenant whose `column` is `value`, ordered by
    /// `order`: `SELECT {columns} FROM {table} WHERE tenant_id = $1 AND {column} = $2 ORDER BY
    /// {order}` (a parent's children: a ticket's comments, a pipeline's stages).
    pub async fn rows_of<R: FromAnyRow>(
        &mut self,
        table: &str,
        columns: &str,
        column: &str,
        value: impl crate::query::IntoArg,
        order: &str,
    ) -> Result<Vec<R>> {
        let tenant = self.scope().tenant_id();
        self.fetch_all(
            Query::new(format!(
                "SELECT {columns} FROM {table} WHERE tenant_id = $1 AND {column} = $2 ORDER BY {order}"
            ))
            .bind(tenant)
            .bind(value),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/p"),
            "postgres://app:***@db:5432/p"
        );
        assert_eq!(redact_url("postgres://app@db/p"), "postgres://app@db/p");
        assert_eq!(
            redact_url("sqlite://data/p.sqlite"),
            "sqlite://data/p.sqlite"
        );
    }

    #[test]
    fn sqlite_times_sort_as_text_in_time_order() {
        let whole = time::macros::datetime!(2026-12-01 10:00:02 UTC);
        let later = whole + time::Duration::milliseconds(665);
        let offset = later.to_offset(time::macros::offset!(+2));
        let (a, b) = (
            sqlite_time(Some(whole)).unwrap(),
            sqlite_time(Some(offset)).unwrap(),
        );
        assert_eq!(a, "2026-12-01T10:00:02.000000000Z");
        assert_eq!(b, "2026-12-01T10:00:02.665000000Z");
        assert!(a < b);
        let back = time::OffsetDateTime::parse(&b, &time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(back, later);
        assert_eq!(sqlite_time(None), None);
    }

    #[test]
    fn unknown_schemes_are_refused_clearly() {
        let err = backend_of("mysql://x").unwrap_err().to_string();
        assert!(err.contains("use sqlite://PATH or postgres://"), "{err}");
    }
}

#[cfg(test)]
mod migration_tests {
    fn names(backend: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn both_databases_have_the_same_migrations() {
        assert!(!names("sqlite").is_empty());
        assert_eq!(
            names("sqlite"),
            names("postgres"),
            "every schema change needs both databases"
        );
    }
}
