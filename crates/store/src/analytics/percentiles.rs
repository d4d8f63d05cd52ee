//! First-response and resolution times: continuous percentiles, by the database.

use super::*;

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
