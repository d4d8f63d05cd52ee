//! The SQLite and PostgreSQL schemas after all migrations, compared from the catalogs: the same
//! tables, the same columns (compatible types, same nullability) and the same indexes (column
//! list, uniqueness, partial or not). Index names are ignored; differences that are deliberate
//! are listed in `DELIBERATE` with their reason, and a listed difference that no longer occurs
//! fails too, so the list cannot go stale.
//!
//! Not compared, on purpose: row-level security policies and the helper functions they call
//! (PostgreSQL only: SQLite has no roles, the store's scopes filter by tenant there), triggers
//! (SQLite's 0012 enforces with a trigger the message→conversation rule that PostgreSQL's 0012
//! enforces with a foreign key), CHECK constraints and foreign keys (written per dialect; the
//! HTTP tests exercise them on both), and partial-index predicates (each database rewrites them
//! in its own syntax; whether an index is partial is compared).

use palisade_testkit::{spawn_app, Db, TestDb};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;

/// One column as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// The type class both databases must agree on (see `pg_class_of` / `sqlite_class_of`).
    class: String,
    /// The declared type, for messages.
    declared: String,
    nullable: bool,
}

/// An index by what it does, not by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    partial: bool,
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeMap<String, Column>,
    /// Index → how many such indexes (names ignored).
    indexes: BTreeMap<Index, usize>,
}

type Schema = BTreeMap<String, Table>;

/// Differences between the two trees that are intended, each with its reason. Each entry is a
/// line exactly as `compare` reports it.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "table contacts: index (tags) only in postgres",
        "the `?tag=` filter uses a GIN index (jsonb_path_ops) on PostgreSQL (0009); SQLite has \
         no index that can serve a JSON-array containment test, so it scans the tenant's rows",
    ),
    (
        "table conversations: unique index (tenant_id, id) only in sqlite",
        "SQLite keeps messages' old foreign key to conversations (tenant_id, id), which needs \
         this unique index; rebuilding messages to change its keys would cascade to the rows \
         that reference it (0012's notes); PostgreSQL dropped the key and its index in 0012",
    ),
    (
        "table conversations: unique index (tenant_id, id, connection_id) only in postgres",
        "PostgreSQL's 0012 makes messages reference conversations by (tenant, id, connection), \
         which needs this unique index; SQLite enforces the same rule with the trigger \
         messages_connection_is_conversations, which finds the row through (tenant_id, id)",
    ),
    (
        "table conversations: index (tenant_id, created_at, connection_id, status, assignee_id, first_inbound_at, first_response_at) only in sqlite",
        "SQLite keeps 0031's covering analytics index: it rewrites only the indexes whose \
         columns an update changed, so it costs nothing per message; PostgreSQL's 0040 \
         narrowed it, because there every message's update of its conversation writes an \
         entry into every index (the ingest figure)",
    ),
    (
        "table conversations: index (tenant_id, created_at) only in postgres",
        "PostgreSQL's 0040: the narrow form of the covering index SQLite keeps (see above)",
    ),
    (
        "table conversations: index (tenant_id, resolved_at, connection_id, assignee_id, created_at) only in sqlite",
        "as for the created index: SQLite keeps 0031's covering form",
    ),
    (
        "table conversations: index (tenant_id, resolved_at) WHERE … only in postgres",
        "PostgreSQL's 0040: resolved conversations only, so the open conversation a message \
         updates has no entry in it",
    ),
];

/// The one type mapping between the trees (see the header of each 0001_foundation.sql):
/// UUIDs are `uuid` ↔ 16-byte `BLOB`, bytes `bytea` ↔ `BLOB`, times `timestamptz` ↔ UTC `TEXT`
/// (sqlx's encoding), JSON `jsonb` ↔ `TEXT`, booleans `boolean` ↔ `INTEGER` (0/1), integers
/// `bigint`/`integer`/`smallint` ↔ `INTEGER`, text `text` ↔ `TEXT`. Anything else is reported.
fn pg_class_of(data_type: &str) -> String {
    match data_type {
        "uuid" | "bytea" => "blob",
        "timestamp with time zone" | "jsonb" | "text" => "text",
        "boolean" | "bigint" | "integer" | "smallint" => "integer",
        other => return format!("unmapped postgres type {other}"),
    }
    .to_owned()
}

fn sqlite_class_of(declared: &str) -> String {
    match declared.to_ascii_uppercase().as_str() {
        "BLOB" => "blob",
        "TEXT" => "text",
        "INTEGER" => "integer",
        other => return format!("unmapped sqlite type {other}"),
    }
    .to_owned()
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for name in names {
        let mut table = Table::default();
        let cols = sqlx::query(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&mut c)
        .await
        .unwrap();
        let mut rowid_alias = None;
        let pk_count = cols.iter().filter(|r| r.get::<i64, _>("pk") > 0).count();
        for r in &cols {
            let col: String = r.get("name");
            let declared: String = r.get("type");
            let notnull: i64 = r.get("notnull");
            let pk: i64 = r.get("pk");
            // An INTEGER PRIMARY KEY is the rowid: unique and never NULL, with no index listed.
            let is_rowid = pk == 1 && pk_count == 1 && declared.eq_ignore_ascii_case("INTEGER");
            if is_rowid {
                rowid_alias = Some(col.clone());
            }
            table.columns.insert(
                col,
                Column {
                    class: sqlite_class_of(&declared),
                    declared,
                    nullable: notnull == 0 && !is_rowid,
                },
            );
        }
        if let Some(col) = rowid_alias {
            *table
                .indexes
                .entry(Index {
                    columns: vec![col],
                    unique: true,
                    partial: false,
                })
                .or_default() += 1;
        }
        let indexes = sqlx::query("SELECT name, \"unique\", partial FROM pragma_index_list(?)")
            .bind(&name)
            .fetch_all(&mut c)
            .await
            .unwrap();
        for ix in indexes {
            let ix_name: String = ix.get("name");
            let columns: Vec<Option<String>> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&ix_name)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            let key = Index {
                columns: columns
                    .into_iter()
                    .map(|c| c.unwrap_or_else(|| "<expression>".into()))
                    .collect(),
                unique: ix.get::<i64, _>("unique") != 0,
                partial: ix.get::<i64, _>("partial") != 0,
            };
            *table.indexes.entry(key).or_default() += 1;
        }
        schema.insert(name, table);
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let mut schema = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for t in tables {
        schema.insert(t, Table::default());
    }
    let cols = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty,
                is_nullable::text AS n
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for r in cols {
        let Some(table) = schema.get_mut(&r.get::<String, _>("t")) else {
            continue; // a view
        };
        let declared: String = r.get("ty");
        table.columns.insert(
            r.get("c"),
            Column {
                class: pg_class_of(&declared),
                declared,
                nullable: r.get::<String, _>("n") == "YES",
            },
        );
    }
    // Key columns only (not INCLUDE columns), in order; an expression has attnum 0.
    let indexes = sqlx::query(
        "SELECT t.relname::text AS t, ix.indisunique AS u, ix.indpred IS NOT NULL AS p,
                ARRAY(SELECT COALESCE(a.attname::text, '<expression>')
                      FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                      WHERE k.ord <= ix.indnkeyatts
                      ORDER BY k.ord) AS cols
         FROM pg_index ix
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for r in indexes {
        let Some(table) = schema.get_mut(&r.get::<String, _>("t")) else {
            continue;
        };
        let key = Index {
            columns: r.get("cols"),
            unique: r.get("u"),
            partial: r.get("p"),
        };
        *table.indexes.entry(key).or_default() += 1;
    }
    schema
}

fn describe(ix: &Index) -> String {
    format!(
        "{}index ({}){}",
        if ix.unique { "unique " } else { "" },
        ix.columns.join(", "),
        if ix.partial { " WHERE …" } else { "" }
    )
}

/// Every difference, one line each, naming the table (and column or index).
fn compare(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for name in sqlite.keys().filter(|n| !postgres.contains_key(*n)) {
        out.push(format!("table {name}: only in sqlite"));
    }
    for name in postgres.keys().filter(|n| !sqlite.contains_key(*n)) {
        out.push(format!("table {name}: only in postgres"));
    }
    for (name, s) in sqlite {
        let Some(p) = postgres.get(name) else {
            continue;
        };
        for (col, sc) in &s.columns {
            match p.columns.get(col) {
                None => out.push(format!("column {name}.{col}: only in sqlite")),
                Some(pc) => {
                    if sc.class != pc.class {
                        out.push(format!(
                            "column {name}.{col}: type sqlite {} vs postgres {}",
                            sc.declared, pc.declared
                        ));
                    }
                    if sc.nullable != pc.nullable {
                        let null = |n: bool| if n { "NULL" } else { "NOT NULL" };
                        out.push(format!(
                            "column {name}.{col}: sqlite {} vs postgres {}",
                            null(sc.nullable),
                            null(pc.nullable)
                        ));
                    }
                }
            }
        }
        for col in p.columns.keys().filter(|c| !s.columns.contains_key(*c)) {
            out.push(format!("column {name}.{col}: only in postgres"));
        }
        for (ix, &n) in &s.indexes {
            let m = p.indexes.get(ix).copied().unwrap_or(0);
            if n > m {
                out.push(format!("table {name}: {} only in sqlite", describe(ix)));
            }
        }
        for (ix, &n) in &p.indexes {
            let m = s.indexes.get(ix).copied().unwrap_or(0);
            if n > m {
                out.push(format!("table {name}: {} only in postgres", describe(ix)));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    if Db::postgres_url().is_none() {
        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to compare with PostgreSQL");
        return;
    }
    // Each app runs every migration on its fresh database at start.
    let lite = spawn_app(Db::Sqlite).await;
    let pg = spawn_app(Db::Postgres).await;
    let TestDb::Sqlite { url } = &lite.db else {
        unreachable!()
    };
    let TestDb::Postgres { admin_url, .. } = &pg.db else {
        unreachable!()
    };
    let sqlite = sqlite_schema(url).await;
    let postgres = postgres_schema(admin_url).await;
    assert!(
        sqlite.contains_key("messages") && postgres.contains_key("messages"),
        "the catalogs were read: {:?} / {:?}",
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>()
    );

    let found = compare(&sqlite, &postgres);
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|d| !DELIBERATE.iter().any(|(line, _)| line == d))
        .collect();
    let stale: Vec<&str> = DELIBERATE
        .iter()
        .map(|(line, _)| *line)
        .filter(|line| !found.iter().any(|d| d == line))
        .collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "the SQLite and PostgreSQL schemas drifted apart (fix the migration pair, or list a \
         deliberate difference in DELIBERATE with its reason):\n  {}\nlisted but no longer \
         found:\n  {}",
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        if stale.is_empty() {
            "(none)".to_owned()
        } else {
            stale.join("\n  ")
        }
    );
}
