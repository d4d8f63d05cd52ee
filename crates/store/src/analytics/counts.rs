//! Messages per bucket, from the rollups (whole hours, whole quarter hours) and the raw rows
//! of the ends; PostgreSQL's pending deltas folded into the rollups.

use super::*;

/// A rollup slot: 15 minutes, in seconds.
pub(super) const SLOT_SECONDS: i64 = 900;
pub(super) const SLOT_NANOS: i128 = 900_000_000_000;
/// An hour, the coarser rollup (`message_counts_hourly`), in seconds.
pub(super) const HOUR_SECONDS: i64 = 3600;

/// The start (Unix seconds) of the slot holding `t`.
pub(super) fn slot_floor(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(SLOT_NANOS)).unwrap_or(0) * SLOT_SECONDS
}

/// The first slot start at or after `t`.
pub(super) fn slot_ceil(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    let whole = n.div_euclid(SLOT_NANOS) + i128::from(n.rem_euclid(SLOT_NANOS) != 0);
    i64::try_from(whole).unwrap_or(0) * SLOT_SECONDS
}

/// The first multiple of `unit` at or after `s` (Unix seconds).
pub(super) fn ceil_to(s: i64, unit: i64) -> i64 {
    s.div_euclid(unit) * unit + if s.rem_euclid(unit) == 0 { 0 } else { unit }
}

/// Where each bucket's messages are counted: `hours`, the whole UTC hours `[lo, hi)` (Unix
/// seconds) of bucket `i`, read from `message_counts_hourly`; `slots`, its whole quarter
/// hours outside those hours (a zone whose offset is not whole hours, +05:30 or +05:45, starts
/// its days inside an hour), read from `message_counts`; `raw`, the parts of bucket `i` that
/// are not a whole slot (its ends, each shorter than a slot), read from `messages`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Split {
    pub(super) hours: Vec<(usize, i64, i64)>,
    pub(super) slots: Vec<(usize, i64, i64)>,
    pub(super) raw: Vec<(usize, Bucket)>,
}

pub(super) fn split(buckets: &[Bucket]) -> Split {
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
pub(super) enum Rollup {
    /// `message_counts`, 15 minutes.
    QuarterHours,
    /// `message_counts_hourly`, an hour.
    Hours,
}

impl Rollup {
    /// What to read the rollup from (as `FROM {table} c`): on PostgreSQL the rollup and the
    /// counts not yet folded into it (`message_count_deltas`, migration 0038), so that a count
    /// is complete as soon as its messages commit.
    pub(super) fn table(self, db: Backend) -> &'static str {
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

/// `(i, lo, hi)` rows of whole numbers, for a `VALUES` list.
pub(super) fn int_rows(rows: &[(usize, i64, i64)]) -> String {
    rows.iter()
        .map(|(i, lo, hi)| format!("({i}, CAST({lo} AS bigint), CAST({hi} AS bigint))"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Messages in and out of the slots `[lo, hi)` of each `(i, lo, hi)`, from the `rollup`'s
/// table, as `(i, in, out)`.
pub(super) async fn slot_counts(
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
pub(super) async fn raw_counts(
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
