//! Analytics: counts, sums and percentiles over a tenant's messages, conversations and deals,
//! computed by the database under the caller's [`TenantScope`] (every statement binds the
//! scope's tenant). The caller cuts the range into buckets (local days or weeks as UTC
//! instants).
//!
//! Messages are not read one by one: triggers on `messages` keep `message_counts`, the
//! messages in and out per 15-minute UTC slot, number and author (migration 0031), the same
//! per UTC hour in `message_counts_hourly` (migration 0035), and each conversation's
//! `first_inbound_at` and `first_response_at`. A bucket's messages are the counts of its whole
//! hours, plus its whole quarter hours outside them (a local day of any zone is a whole number
//! of quarter hours; one whose offset is not whole hours, +05:30, starts inside an hour), plus
//! the messages of its ends that are not a whole slot (an RFC 3339 bound such as 10:07), read
//! from `messages` (at most 15 minutes each). Each statement reads one index range per bucket: on
//! SQLite a `VALUES` list of the buckets joined to the table, on PostgreSQL the same list with
//! a `LATERAL` read (its planner would otherwise run a join on a `VALUES` list as one scan
//! compared with every bucket), or one range read that finds each row's bucket with
//! `width_bucket` over the sorted boundaries.
//!
//! Percentiles are continuous (linear interpolation between the two nearest ranks, as
//! PostgreSQL's `percentile_cont`): PostgreSQL computes them with `percentile_cont`; SQLite,
//! which has no such aggregate, numbers the ordered values with a window function and returns
//! only the (at most four) rows around each rank, which [`interpolate`] combines.

use crate::{Backend, Query, Result, SystemScope, TenantScope, Tx};
use palisade_domain::{ConnectionId, UserId};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The rows counted: created (or resolved, closed) in `[from, to)`, on one number if given.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub connection_id: Option<ConnectionId>,
}

/// One bucket, `[lo, hi)`, inside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub lo: OffsetDateTime,
    pub hi: OffsetDateTime,
}

/// Counts of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketCounts {
    pub messages_in: i64,
    pub messages_out: i64,
    pub conversations_new: i64,
    pub conversations_resolved: i64,
}

/// Median and 90th percentile in seconds; `None` without any value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub count: i64,
}

/// `a - b` in seconds, as a double.
fn seconds_between(db: Backend, a: &str, b: &str) -> String {
    match db {
        Backend::Postgres => {
            format!("CAST(EXTRACT(EPOCH FROM ({a} - {b})) AS double precision)")
        }
        Backend::Sqlite => format!("(unixepoch({a}, 'subsec') - unixepoch({b}, 'subsec')) * 1.0"),
    }
}

/// A bound time inside a `VALUES` row: PostgreSQL needs its type.
fn time_param(db: Backend, n: usize) -> String {
    match db {
        Backend::Postgres => format!("CAST(${n} AS timestamptz)"),
        Backend::Sqlite => format!("${n}"),
    }
}

/// `WITH b(i, lo, hi) AS (VALUES …)` for `buckets`, their times bound from `$first` on;
/// returns the SQL and the query with the times bound.
fn buckets_cte(db: Backend, mut q: Query, first: usize, buckets: &[Bucket]) -> (String, Query) {
    let rows: Vec<String> = buckets
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let n = first + i * 2;
            format!("({i}, {}, {})", time_param(db, n), time_param(db, n + 1))
        })
        .collect();
    for b in buckets {
        q = q.bind(b.lo).bind(b.hi);
    }
    (
        format!("WITH b(i, lo, hi) AS (VALUES {})", rows.join(", ")),
        q,
    )
}

#[derive(sqlx::FromRow)]
struct PairRow {
    i: i64,
    a: i64,
    b: i64,
}

/// A rollup slot: 15 minutes, in seconds.
const SLOT_SECONDS: i64 = 900;
const SLOT_NANOS: i128 = 900_000_000_000;
/// An hour, the coarser rollup (`message_counts_hourly`), in seconds.
const HOUR_SECONDS: i64 = 3600;

/// The start (Unix seconds) of the slot holding `t`.
fn slot_floor(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(SLOT_NANOS)).unwrap_or(0) * SLOT_SECONDS
}

/// The first slot start at or after `t`.
fn slot_ceil(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    let whole = n.div_euclid(SLOT_NANOS) + i128::from(n.rem_euclid(SLOT_NANOS) != 0);
    i64::try_from(whole).unwrap_or(0) * SLOT_SECONDS
}

/// The first multiple of `unit` at or after `s` (Unix seconds).
fn ceil_to(s: i64, unit: i64) -> i64 {
    s.div_euclid(unit) * unit + if s.rem_euclid(unit) == 0 { 0 } else { unit }
}

/// Where each bucket's messages are counted: `hours`, the whole UTC hours `[lo, hi)` (Unix
/// seconds) of bucket `i`, read from `message_counts_hourly`; `slots`, its whole quarter
/// hours outside those hours (a zone whose offset is not whole hours, +05:30 or +05:45, starts
/// its days inside an hour), read from `message_counts`; `raw`, the parts of bucket `i` that
/// are not a whole slot (its ends, each shorter than a slot), read from `messages`.
#[derive(Debug, Default, PartialEq)]
struct Split {
    hours: Vec<(usize, i64, i64)>,
    slots: Vec<(usize, i64, i64)>,
    raw: Vec<(usize, Bucket)>,
}

fn split(buckets: &[Bucket]) -> Split {
    let mut out = Split::default();
    for (i, b) in buckets.iter().enumerate() {
        let (lo, hi) = (slot_ceil(b.lo), slot_floor(b.hi));
        let times = (
            OffsetDateTime::from_unix_timestamp(lo),
            OffsetDateTime::from_unix_timestamp(hi),
        );
        match times {
            (Ok(lo_t), Ok(hi_t)) if lo < hi => {
                let (h_lo, h_hi) = (
                    ceil_to(lo, HOUR_SECONDS),
                    hi.div_euclid(HOUR_SECONDS) * HOUR_SECONDS,
                );
                if h_lo < h_hi {
                    out.hours.push((i, h_lo, h_hi));
                    if lo < h_lo {
                        out.slots.push((i, lo, h_lo));
                    }
                    if h_hi < hi {
                        out.slots.push((i, h_hi, hi));
                    }
                } else {
                    out.slots.push((i, lo, hi));
                }
                if b.lo < lo_t {
                    out.raw.push((i, Bucket { lo: b.lo, hi: lo_t }));
                }
                if hi_t < b.hi {
                    out.raw.push((i, Bucket { lo: hi_t, hi: b.hi }));
                }
            }
            _ => out.raw.push((i, *b)),
        }
    }
    out
}

/// A rollup of the messages: the table and the length of its slots.
#[derive(Debug, Clone, Copy)]
enum Rollup {
    /// `message_counts`, 15 minutes.
    QuarterHours,
    /// `message_counts_hourly`, an hour.
    Hours,
}

impl Rollup {
    /// What to read the rollup from (as `FROM {table} c`): on PostgreSQL the rollup and the
    /// counts not yet folded into it (`message_count_deltas`, migration 0038), so that a count
    /// is complete as soon as its messages commit.
    fn table(self, db: Backend) -> &'static str {
        match (db, self) {
            (Backend::Sqlite, Rollup::QuarterHours) => "message_counts",
            (Backend::Sqlite, Rollup::Hours) => "message_counts_hourly",
            (Backend::Postgres, Rollup::QuarterHours) => {
                "(SELECT tenant_id, slot, connection_id, direction, author_id, n FROM message_counts
                  UNION ALL
                  SELECT tenant_id, slot, connection_id, direction, author_id, n
                  FROM message_count_deltas)"
            }
            // The deltas keep their quarter hour's `slot`: every reader of the hourly rollup
            // asks for whole hours (`slot >= lo AND slot < hi`, both multiples of 3600), which
            // hold exactly the quarter hours of those hours, so the bounds need no rounding and
            // the `(tenant_id, slot)` index answers (rounded, the bounds were checked against
            // every pending delta, once per bucket).
            (Backend::Postgres, Rollup::Hours) => {
                "(SELECT tenant_id, slot, connection_id, direction, author_id, n
                  FROM message_counts_hourly
                  UNION ALL
                  SELECT tenant_id, slot, connection_id, direction, author_id, n
                  FROM message_count_deltas)"
            }
        }
    }
}

/// Deltas folded per statement by [`fold_count_deltas`].
pub const FOLD_BATCH: i64 = 10_000;

/// Folds up to [`FOLD_BATCH`] of PostgreSQL's pending message counts (`message_count_deltas`,
/// appended by the trigger on `messages`, migration 0038) into `message_counts` and
/// `message_counts_hourly`, in one statement: the deltas are deleted and added at once, so a
/// reader (which adds the pending deltas to the rollups) never counts one twice or misses it
/// (PostgreSQL runs every data-modifying part of the statement to completion, read or not).
/// Rows another node is folding are skipped. Returns how many deltas were folded; SQLite keeps
/// its rollups directly and has none.
pub async fn fold_count_deltas(tx: &mut Tx<SystemScope>) -> Result<u64> {
    if tx.backend() == Backend::Sqlite {
        return Ok(0);
    }
    #[derive(sqlx::FromRow)]
    struct Folded {
        n: i64,
    }
    let r: Folded = tx
        .fetch_one(
            Query::new(
                "WITH picked AS MATERIALIZED (
                     SELECT tenant_id, id FROM message_count_deltas
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),
                 d AS (
                     DELETE FROM message_count_deltas x USING picked p
                     WHERE x.tenant_id = p.tenant_id AND x.id = p.id
                     RETURNING x.tenant_id, x.slot, x.connection_id, x.direction, x.author_id, x.n),
                 q AS (
                     INSERT INTO message_counts AS c (tenant_id, slot, connection_id, direction, author_id, n)
                     SELECT tenant_id, slot, connection_id, direction, author_id, SUM(n)
                     FROM d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
                     ON CONFLICT (tenant_id, slot, connection_id, direction, author_id)
                         DO UPDATE SET n = c.n + EXCLUDED.n),
                 h AS (
                     INSERT INTO message_counts_hourly AS c (tenant_id, slot, connection_id, direction, author_id, n)
                     SELECT tenant_id, slot - ((slot % 3600) + 3600) % 3600, connection_id,
                         direction, author_id, SUM(n)
                     FROM d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
                     ON CONFLICT (tenant_id, slot, connection_id, direction, author_id)
                         DO UPDATE SET n = c.n + EXCLUDED.n)
                 SELECT COUNT(*) AS n FROM d",
            )
            .bind(FOLD_BATCH),
        )
        .await?;
    Ok(u64::try_from(r.n).unwrap_or(0))
}

/// `$1` tenant and, when the range is on one number, `$2` with its condition on `alias`.
fn tenant_and_number(
    tenant: palisade_domain::TenantId,
    range: &Range,
    alias: &str,
) -> (Query, String) {
    let q = Query::new("").bind(tenant);
    match range.connection_id {
        Some(c) => (q.bind(c), format!(" AND {alias}.connection_id = $2")),
        None => (q, String::new()),
    }
}

/// `(i, lo, hi)` rows of whole numbers, for a `VALUES` list.
fn int_rows(rows: &[(usize, i64, i64)]) -> String {
    rows.iter()
        .map(|(i, lo, hi)| format!("({i}, CAST({lo} AS bigint), CAST({hi} AS bigint))"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Messages in and out of the slots `[lo, hi)` of each `(i, lo, hi)`, from the `rollup`'s
/// table, as `(i, in, out)`.
async fn slot_counts(
    tx: &mut Tx<TenantScope>,
    range: &Range,
    rollup: Rollup,
    slots: &[(usize, i64, i64)],
) -> Result<Vec<(usize, i64, i64)>> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    debug_assert!(
        !matches!(rollup, Rollup::Hours)
            || slots
                .iter()
                .all(|(_, lo, hi)| lo % HOUR_SECONDS == 0 && hi % HOUR_SECONDS == 0),
        "the hourly rollup is read in whole hours: {slots:?}"
    );
    let table = rollup.table(tx.backend());
    let (q, on_number) = tenant_and_number(tx.scope().tenant_id(), range, "c");
    let sums = "CAST(COALESCE(SUM(CASE WHEN c.direction = 'inbound' THEN c.n ELSE 0 END), 0) AS bigint) AS a,
         CAST(COALESCE(SUM(CASE WHEN c.direction = 'outbound' THEN c.n ELSE 0 END), 0) AS bigint) AS b";
    let rows = int_rows(slots);
    let sql = match tx.backend() {
        Backend::Postgres => format!(
            "SELECT CAST(s.i AS bigint) AS i, x.a AS a, x.b AS b
             FROM (VALUES {rows}) AS s(i, lo, hi) CROSS JOIN LATERAL (
                 SELECT {sums} FROM {table} c
                 WHERE c.tenant_id = $1 AND c.slot >= s.lo AND c.slot < s.hi{on_number}
             ) x"
        ),
        Backend::Sqlite => format!(
            "WITH s(i, lo, hi) AS (VALUES {rows})
             SELECT CAST(s.i AS bigint) AS i, {sums}
             FROM s JOIN {table} c
                 ON c.tenant_id = $1 AND c.slot >= s.lo AND c.slot < s.hi{on_number}
             GROUP BY s.i"
        ),
    };
    Ok(tx
        .fetch_all::<PairRow>(Query { sql, ..q })
        .await?
        .into_iter()
        .filter_map(|r| usize::try_from(r.i).ok().map(|i| (i, r.a, r.b)))
        .collect())
}

/// Messages in and out of each `(i, [lo, hi))`, read from `messages`, as `(i, in, out)`.
async fn raw_counts(
    tx: &mut Tx<TenantScope>,
    range: &Range,
    pieces: &[(usize, Bucket)],
) -> Result<Vec<(usize, i64, i64)>> {
    if pieces.is_empty() {
        return Ok(Vec::new());
    }
    let db = tx.backend();
    let (q, on_number) = tenant_and_number(tx.scope().tenant_id(), range, "m");
    let first = if range.connection_id.is_some() { 3 } else { 2 };
    let times: Vec<Bucket> = pieces.iter().map(|(_, b)| *b).collect();
    let (cte, q) = buckets_cte(db, q, first, &times);
    let sums = "COALESCE(SUM(CASE WHEN m.direction = 'inbound' THEN 1 ELSE 0 END), 0) AS a,
         COALESCE(SUM(CASE WHEN m.direction = 'outbound' THEN 1 ELSE 0 END), 0) AS b";
    let sql = match db {
        Backend::Postgres => format!(
            "{cte}
             SELECT CAST(b.i AS bigint) AS i, CAST(x.a AS bigint) AS a, CAST(x.b AS bigint) AS b
             FROM b CROSS JOIN LATERAL (
                 SELECT {sums} FROM messages m
                 WHERE m.tenant_id = $1 AND m.created_at >= b.lo AND m.created_at < b.hi{on_number}
             ) x"
        ),
        Backend::Sqlite => format!(
            "{cte}
             SELECT CAST(b.i AS bigint) AS i, {sums}
             FROM b JOIN messages m
                 ON m.tenant_id = $1 AND m.created_at >= b.lo AND m.created_at < b.hi{on_number}
             GROUP BY b.i"
        ),
    };
    Ok(tx
        .fetch_all::<PairRow>(Query { sql, ..q })
        .await?
        .into_iter()
        .filter_map(|r| {
            let piece = pieces.get(usize::try_from(r.i).ok()?)?;
            Some((piece.0, r.a, r.b))
        })
        .collect())
}

/// Messages in and out, new and resolved conversations, per bucket (in the order given).
pub async fn bucket_counts(
    tx: &mut Tx<TenantScope>,
    range: &Range,
    buckets: &[Bucket],
) -> Result<Vec<BucketCounts>> {
    let mut out = vec![BucketCounts::default(); buckets.len()];
    if buckets.is_empty() {
        return Ok(out);
    }
    let db = tx.backend();
    let tenant = tx.scope().tenant_id();
    // $1 tenant, $2 connection (when filtered), then the buckets.
    let first = if range.connection_id.is_some() { 3 } else { 2 };
    let on_number = |alias: &str| {
        if range.connection_id.is_some() {
            format!(" AND {alias}.connection_id = $2")
        } else {
            String::new()
        }
    };
    let start = || {
        let q = Query::new("").bind(tenant);
        match range.connection_id {
            Some(c) => q.bind(c),
            None => q,
        }
    };

    let split = split(buckets);
    for (rollup, slots) in [
        (Rollup::Hours, &split.hours),
        (Rollup::QuarterHours, &split.slots),
    ] {
        for (i, a, b) in slot_counts(tx, range, rollup, slots).await? {
            if let Some(c) = out.get_mut(i) {
                c.messages_in += a;
                c.messages_out += b;
            }
        }
    }
    for (i, a, b) in raw_counts(tx, range, &split.raw).await? {
        if let Some(c) = out.get_mut(i) {
            c.messages_in += a;
            c.messages_out += b;
        }
    }

    for (column, resolved) in [("created_at", false), ("resolved_at", true)] {
        let (sql, q) = match db {
            Backend::Postgres => {
                let n = first;
                let q = start()
                    .bind(buckets.iter().map(|b| Some(b.lo)).collect::<Vec<_>>())
                    .bind(range.from)
                    .bind(range.to);
                (
                    format!(
                        "SELECT CAST(width_bucket(v.{column}, CAST(${n} AS timestamptz[])) - 1 AS bigint) AS i,
                             COUNT(*) AS a, CAST(0 AS bigint) AS b
                         FROM conversations v
                         WHERE v.tenant_id = $1 AND v.{column} >= ${} AND v.{column} < ${}{}
                         GROUP BY 1",
                        n + 1,
                        n + 2,
                        on_number("v")
                    ),
                    q,
                )
            }
            Backend::Sqlite => {
                let (cte, q) = buckets_cte(db, start(), first, buckets);
                (
                    format!(
                        "{cte}
                         SELECT CAST(b.i AS bigint) AS i, COUNT(*) AS a, CAST(0 AS bigint) AS b
                         FROM b JOIN conversations v
                             ON v.tenant_id = $1 AND v.{column} >= b.lo AND v.{column} < b.hi{}
                         GROUP BY b.i",
                        on_number("v")
                    ),
                    q,
                )
            }
        };
        for r in tx.fetch_all::<PairRow>(Query { sql, ..q }).await? {
            if let Some(c) = usize::try_from(r.i).ok().and_then(|i| out.get_mut(i)) {
                if resolved {
                    c.conversations_resolved = r.a;
                } else {
                    c.conversations_new = r.a;
                }
            }
        }
    }
    Ok(out)
}

/// The first query arguments of a range: `$1` tenant, `$2` from, `$3` to, `$4` connection.
fn range_query(tenant: palisade_domain::TenantId, range: &Range) -> (Query, String) {
    let q = Query::new("").bind(tenant).bind(range.from).bind(range.to);
    match range.connection_id {
        Some(c) => (q.bind(c), " AND v.connection_id = $4".to_owned()),
        None => (q, String::new()),
    }
}

/// What a percentile is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Conversations created in the range that had an inbound message and then an outbound
    /// one: seconds from the first inbound message to the first outbound message at or after
    /// it (`first_inbound_at` and `first_response_at`, kept by the triggers on `messages`).
    FirstResponse,
    /// Conversations resolved in the range: seconds from their creation to their resolution.
    Resolution,
}

/// The median and p90 of `measure`, over all conversations (`by_assignee` false, under the key
/// `None`) or per assignee (`None` for unassigned conversations).
pub async fn percentiles(
    tx: &mut Tx<TenantScope>,
    range: &Range,
    measure: Measure,
    by_assignee: bool,
) -> Result<HashMap<Option<UserId>, Percentiles>> {
    let db = tx.backend();
    let tenant = tx.scope().tenant_id();
    let (q, on_number) = range_query(tenant, range);
    let group = match (by_assignee, db) {
        (true, _) => "v.assignee_id",
        (false, Backend::Postgres) => "CAST(NULL AS uuid)",
        (false, Backend::Sqlite) => "NULL",
    };
    let source = match measure {
        Measure::FirstResponse => format!(
            "SELECT {group} AS g, {} AS secs FROM conversations v
             WHERE v.tenant_id = $1 AND v.created_at >= $2 AND v.created_at < $3{on_number}
               AND v.first_response_at IS NOT NULL",
            seconds_between(db, "v.first_response_at", "v.first_inbound_at")
        ),
        Measure::Resolution => format!(
            "SELECT {group} AS g, {} AS secs FROM conversations v
             WHERE v.tenant_id = $1 AND v.resolved_at >= $2 AND v.resolved_at < $3{on_number}",
            seconds_between(db, "v.resolved_at", "v.created_at")
        ),
    };
    let mut out = HashMap::new();
    match db {
        Backend::Postgres => {
            #[derive(sqlx::FromRow)]
            struct Row {
                g: Option<Uuid>,
                median: Option<f64>,
                p90: Option<f64>,
                n: i64,
            }
            let sql = format!(
                "SELECT s.g AS g,
                     percentile_cont(0.5) WITHIN GROUP (ORDER BY s.secs) AS median,
                     percentile_cont(0.9) WITHIN GROUP (ORDER BY s.secs) AS p90,
                     COUNT(*) AS n
                 FROM ({source}) s GROUP BY s.g"
            );
            for r in tx.fetch_all::<Row>(Query { sql, ..q }).await? {
                out.insert(
                    r.g.map(UserId::from),
                    Percentiles {
                        median: r.median,
                        p90: r.p90,
                        count: r.n,
                    },
                );
            }
        }
        Backend::Sqlite => {
            #[derive(sqlx::FromRow)]
            struct Row {
                g: Option<Uuid>,
                secs: f64,
                rn: i64,
                n: i64,
            }
            let sql = format!(
                "SELECT g, secs, rn, n FROM (
                     SELECT s.g AS g, s.secs AS secs,
                         ROW_NUMBER() OVER (PARTITION BY s.g ORDER BY s.secs) - 1 AS rn,
                         COUNT(*) OVER (PARTITION BY s.g) AS n
                     FROM ({source}) s
                 ) r
                 WHERE rn IN (CAST((n - 1) * 0.5 AS INTEGER), CAST((n - 1) * 0.5 AS INTEGER) + 1,
                              CAST((n - 1) * 0.9 AS INTEGER), CAST((n - 1) * 0.9 AS INTEGER) + 1)"
            );
            let mut ranks: HashMap<Option<Uuid>, (i64, HashMap<i64, f64>)> = HashMap::new();
            for r in tx.fetch_all::<Row>(Query { sql, ..q }).await? {
                let e = ranks.entry(r.g).or_insert_with(|| (r.n, HashMap::new()));
                e.1.insert(r.rn, r.secs);
            }
            for (g, (n, values)) in ranks {
                out.insert(
                    g.map(UserId::from),
                    Percentiles {
                        median: interpolate(n, 0.5, &values),
                        p90: interpolate(n, 0.9, &values),
                        count: n,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The continuous percentile `p` of `n` ordered values, from the values at the ranks
/// (0-based) around `p·(n-1)`: what PostgreSQL's `percentile_cont` answers.
pub fn interpolate(n: i64, p: f64, at: &HashMap<i64, f64>) -> Option<f64> {
    if n <= 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let pos = (n - 1) as f64 * p;
    #[allow(clippy::cast_possible_truncation)]
    let lo = pos.floor() as i64;
    let low = *at.get(&lo)?;
    if lo + 1 >= n {
        return Some(low);
    }
    let high = *at.get(&(lo + 1))?;
    #[allow(clippy::cast_precision_loss)]
    Some(low + (high - low) * (pos - lo as f64))
}

/// Conversations created in the range, by their status now.
pub async fn conversations_by_status(
    tx: &mut Tx<TenantScope>,
    range: &Range,
) -> Result<Vec<(String, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        status: String,
        n: i64,
    }
    let (q, on_number) = range_query(tx.scope().tenant_id(), range);
    let sql = format!(
        "SELECT v.status AS status, COUNT(*) AS n FROM conversations v
         WHERE v.tenant_id = $1 AND v.created_at >= $2 AND v.created_at < $3{on_number}
         GROUP BY v.status"
    );
    Ok(tx
        .fetch_all::<Row>(Query { sql, ..q })
        .await?
        .into_iter()
        .map(|r| (r.status, r.n))
        .collect())
}

/// One member's workload in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCounts {
    pub user_id: UserId,
    pub name: String,
    /// Conversations created in the range and assigned to them now.
    pub conversations_assigned: i64,
    /// Conversations resolved in the range and assigned to them now.
    pub conversations_resolved: i64,
    /// Outbound messages they wrote in the range.
    pub messages_sent: i64,
}

/// Every member of the tenant (not deleted), by name, with their counts: grouped statements
/// (assigned, resolved, sent), each one index range read; sent from the message counts (the
/// nil author of a message without one matches no member) and the range's ends that are not
/// whole slots from `messages`.
pub async fn agent_counts(tx: &mut Tx<TenantScope>, range: &Range) -> Result<Vec<AgentCounts>> {
    #[derive(sqlx::FromRow)]
    struct UserRow {
        id: Uuid,
        name: String,
    }
    #[derive(sqlx::FromRow)]
    struct CountRow {
        g: Option<Uuid>,
        n: i64,
    }
    let tenant = tx.scope().tenant_id();
    let users = tx
        .fetch_all::<UserRow>(
            Query::new(
                "SELECT id, name FROM users WHERE tenant_id = $1 AND deleted_at IS NULL
                 ORDER BY name, id",
            )
            .bind(tenant),
        )
        .await?;
    let (_, on_number) = range_query(tenant, range);
    let on_message_number = on_number.replace("v.", "m.");
    let statements = [
        format!(
            "SELECT v.assignee_id AS g, COUNT(*) AS n FROM conversations v
             WHERE v.tenant_id = $1 AND v.created_at >= $2 AND v.created_at < $3{on_number}
             GROUP BY v.assignee_id"
        ),
        format!(
            "SELECT v.assignee_id AS g, COUNT(*) AS n FROM conversations v
             WHERE v.tenant_id = $1 AND v.resolved_at >= $2 AND v.resolved_at < $3{on_number}
             GROUP BY v.assignee_id"
        ),
    ];
    let mut counts: [HashMap<Uuid, i64>; 2] = Default::default();
    for (sql, into) in statements.into_iter().zip(counts.iter_mut()) {
        let (q, _) = range_query(tenant, range);
        *into = tx
            .fetch_all::<CountRow>(Query { sql, ..q })
            .await?
            .into_iter()
            .filter_map(|r| r.g.map(|g| (g, r.n)))
            .collect();
    }
    let [assigned, resolved] = counts;

    // Sent: the whole hours of the range from `message_counts_hourly`, the quarter hours
    // around them from `message_counts`, its ends from `messages`.
    let mut sent: HashMap<Uuid, i64> = HashMap::new();
    let whole = split(&[Bucket {
        lo: range.from,
        hi: range.to,
    }]);
    let mut add = |rows: Vec<CountRow>| {
        for r in rows {
            if let Some(g) = r.g {
                *sent.entry(g).or_insert(0) += r.n;
            }
        }
    };
    let rollups = whole
        .hours
        .iter()
        .map(|s| (Rollup::Hours, s))
        .chain(whole.slots.iter().map(|s| (Rollup::QuarterHours, s)));
    for (rollup, (_, lo, hi)) in rollups {
        let (q, on_number) = tenant_and_number(tenant, range, "c");
        let table = rollup.table(tx.backend());
        let sql = format!(
            "SELECT c.author_id AS g, CAST(SUM(c.n) AS bigint) AS n FROM {table} c
             WHERE c.tenant_id = $1 AND c.slot >= {lo} AND c.slot < {hi}
               AND c.direction = 'outbound'{on_number}
             GROUP BY c.author_id"
        );
        add(tx.fetch_all::<CountRow>(Query { sql, ..q }).await?);
    }
    for (_, piece) in &whole.raw {
        let piece = Range {
            from: piece.lo,
            to: piece.hi,
            connection_id: range.connection_id,
        };
        let (q, _) = range_query(tenant, &piece);
        let sql = format!(
            "SELECT m.author_id AS g, COUNT(*) AS n FROM messages m
             WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3
               AND m.direction = 'outbound'{on_message_number}
             GROUP BY m.author_id"
        );
        add(tx.fetch_all::<CountRow>(Query { sql, ..q }).await?);
    }
    Ok(users
        .into_iter()
        .map(|u| AgentCounts {
            user_id: u.id.into(),
            conversations_assigned: assigned.get(&u.id).copied().unwrap_or(0),
            conversations_resolved: resolved.get(&u.id).copied().unwrap_or(0),
            messages_sent: sent.get(&u.id).copied().unwrap_or(0),
            name: u.name,
        })
        .collect())
}

/// Deals won or lost in the range: deals now in a won (lost) stage that entered it in the
/// range (their latest move into that stage). Sums by kind (`won`, `lost`) and currency.
pub async fn closed_deal_values(
    tx: &mut Tx<TenantScope>,
    range: &Range,
) -> Result<Vec<(String, String, i64, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        kind: String,
        currency: String,
        value_minor: i64,
        n: i64,
    }
    let q = Query::new("")
        .bind(tx.scope().tenant_id())
        .bind(range.from)
        .bind(range.to);
    let sql = "SELECT c.kind AS kind, c.currency AS currency,
             CAST(SUM(c.value_minor) AS bigint) AS value_minor, COUNT(*) AS n
         FROM (
             SELECT s.kind AS kind, d.currency AS currency, d.value_minor AS value_minor,
                 (SELECT MAX(h.changed_at) FROM deal_stage_history h
                  WHERE h.tenant_id = $1 AND h.deal_id = d.id AND h.to_stage_id = d.stage_id)
                     AS closed_at
             FROM deals d JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
             WHERE d.tenant_id = $1 AND s.kind IN ('won', 'lost')
         ) c
         WHERE c.closed_at >= $2 AND c.closed_at < $3
         GROUP BY c.kind, c.currency
         ORDER BY c.kind, c.currency"
        .to_owned();
    Ok(tx
        .fetch_all::<Row>(Query { sql, ..q })
        .await?
        .into_iter()
        .map(|r| (r.kind, r.currency, r.value_minor, r.n))
        .collect())
}

/// One stage's deals in one currency (a stage without deals has one row, currency `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageValue {
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub stage_id: Uuid,
    pub name: String,
    pub kind: String,
    pub position: i64,
    pub currency: Option<String>,
    pub count: i64,
    pub value_minor: i64,
}

/// The deals in each stage now, by currency, pipelines oldest first and stages in order.
pub async fn stage_values(tx: &mut Tx<TenantScope>) -> Result<Vec<StageValue>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        pipeline_id: Uuid,
        pipeline_name: String,
        stage_id: Uuid,
        name: String,
        kind: String,
        position: i64,
        currency: Option<String>,
        n: i64,
        value_minor: i64,
    }
    let q = Query::new(
        "SELECT p.id AS pipeline_id, p.name AS pipeline_name, s.id AS stage_id, s.name AS name,
             s.kind AS kind, s.position AS position, d.currency AS currency, COUNT(d.id) AS n,
             CAST(COALESCE(SUM(d.value_minor), 0) AS bigint) AS value_minor
         FROM pipeline_stages s
         JOIN pipelines p ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id
         LEFT JOIN deals d ON d.tenant_id = s.tenant_id AND d.stage_id = s.id
         WHERE s.tenant_id = $1
         GROUP BY p.id, p.name, p.created_at, s.id, s.name, s.kind, s.position, d.currency
         ORDER BY p.created_at, p.id, s.position, d.currency",
    )
    .bind(tx.scope().tenant_id());
    Ok(tx
        .fetch_all::<Row>(q)
        .await?
        .into_iter()
        .map(|r| StageValue {
            pipeline_id: r.pipeline_id,
            pipeline_name: r.pipeline_name,
            stage_id: r.stage_id,
            name: r.name,
            kind: r.kind,
            position: r.position,
            currency: r.currency,
            count: r.n,
            value_minor: r.value_minor,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn buckets_are_whole_slots_and_the_ends_that_are_not() {
        // A Kolkata day (18:30 UTC to 18:30 UTC): whole hours, and the half hours at its ends
        // from the quarter hours.
        let day = Bucket {
            lo: t("2026-03-06T18:30:00Z"),
            hi: t("2026-03-07T18:30:00Z"),
        };
        let s = split(&[day]);
        let (h19, h18) = (
            t("2026-03-06T19:00:00Z").unix_timestamp(),
            t("2026-03-07T18:00:00Z").unix_timestamp(),
        );
        assert_eq!(s.hours, [(0, h19, h18)]);
        assert_eq!(
            s.slots,
            [
                (0, day.lo.unix_timestamp(), h19),
                (0, h18, day.hi.unix_timestamp())
            ]
        );
        assert!(s.raw.is_empty());
        // A New York day: whole hours only.
        let ny = Bucket {
            lo: t("2026-03-07T05:00:00Z"),
            hi: t("2026-03-08T05:00:00Z"),
        };
        let s = split(&[ny]);
        assert_eq!(
            s.hours,
            [(0, ny.lo.unix_timestamp(), ny.hi.unix_timestamp())]
        );
        assert!(s.slots.is_empty() && s.raw.is_empty());
        // Quarter hours around one whole hour; none whole: quarter hours only.
        let s = split(&[Bucket {
            lo: t("2026-03-07T05:15:00Z"),
            hi: t("2026-03-07T07:45:00Z"),
        }]);
        assert_eq!((s.hours.len(), s.slots.len()), (1, 2), "{s:?}");
        let s = split(&[Bucket {
            lo: t("2026-03-07T05:15:00Z"),
            hi: t("2026-03-07T06:45:00Z"),
        }]);
        assert!(s.hours.is_empty());
        assert_eq!(s.slots.len(), 1);
        // RFC 3339 ends inside slots: the ends are read from the messages.
        let b = Bucket {
            lo: t("2026-03-07T15:04:00.5Z"),
            hi: t("2026-03-08T04:31:00Z"),
        };
        let s = split(&[day, b]);
        assert_eq!(
            s.hours[1],
            (
                1,
                t("2026-03-07T16:00:00Z").unix_timestamp(),
                t("2026-03-08T04:00:00Z").unix_timestamp()
            )
        );
        assert_eq!(
            &s.slots[2..],
            [
                (
                    1,
                    t("2026-03-07T15:15:00Z").unix_timestamp(),
                    t("2026-03-07T16:00:00Z").unix_timestamp()
                ),
                (
                    1,
                    t("2026-03-08T04:00:00Z").unix_timestamp(),
                    t("2026-03-08T04:30:00Z").unix_timestamp()
                )
            ]
        );
        assert_eq!(
            s.raw,
            [
                (
                    1,
                    Bucket {
                        lo: b.lo,
                        hi: t("2026-03-07T15:15:00Z")
                    }
                ),
                (
                    1,
                    Bucket {
                        lo: t("2026-03-08T04:30:00Z"),
                        hi: b.hi
                    }
                )
            ]
        );
        // Shorter than a slot, or across one boundary only: all from the messages.
        for b in [
            Bucket {
                lo: t("2026-03-07T15:05:00Z"),
                hi: t("2026-03-07T15:10:00Z"),
            },
            Bucket {
                lo: t("2026-03-07T15:05:00Z"),
                hi: t("2026-03-07T15:20:00Z"),
            },
        ] {
            assert_eq!(
                split(&[b]),
                Split {
                    hours: vec![],
                    slots: vec![],
                    raw: vec![(0, b)]
                }
            );
        }
        // Before 1970 the slot is still the one holding the time.
        assert_eq!(slot_floor(t("1969-12-31T23:59:00Z")), -900);
        assert_eq!(slot_ceil(t("1969-12-31T23:44:00Z")), -900);
        assert_eq!(ceil_to(-900, HOUR_SECONDS), 0);
        assert_eq!(ceil_to(-3600, HOUR_SECONDS), -3600);
        assert_eq!(ceil_to(1, HOUR_SECONDS), 3600);
    }

    #[test]
    fn interpolation_is_percentile_cont() {
        let at: HashMap<i64, f64> = [(0, 10.0), (1, 20.0)].into();
        assert_eq!(interpolate(2, 0.5, &at), Some(15.0));
        assert_eq!(interpolate(2, 0.9, &at), Some(19.0));
        assert_eq!(interpolate(1, 0.9, &[(0, 7.0)].into()), Some(7.0));
        assert_eq!(interpolate(0, 0.5, &HashMap::new()), None);
        // 5 values: median is rank 2, p90 between ranks 3 and 4 (3.6).
        let at: HashMap<i64, f64> = [(2, 3.0), (3, 4.0), (4, 14.0)].into();
        assert_eq!(interpolate(5, 0.5, &at), Some(3.0));
        assert!((interpolate(5, 0.9, &at).unwrap() - 10.0).abs() < 1e-9);
    }
}
