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

mod breakdowns;
mod counts;
mod percentiles;

pub use breakdowns::*;
pub use counts::*;
pub use percentiles::*;

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

/// The first query arguments of a range: `$1` tenant, `$2` from, `$3` to, `$4` connection.
fn range_query(tenant: palisade_domain::TenantId, range: &Range) -> (Query, String) {
    let q = Query::new("").bind(tenant).bind(range.from).bind(range.to);
    match range.connection_id {
        Some(c) => (q.bind(c), " AND v.connection_id = $4".to_owned()),
        None => (q, String::new()),
    }
}
