//! Claims of scheduled work (the backup schedule): the first node to insert an occurrence's
//! row runs it, every other node sees the row and leaves it. The latest claim also tells a
//! node that starts when the job last ran anywhere in the cluster.

use crate::{Query, Result, SystemScope, Tx};
use time::OffsetDateTime;

/// Claims the occurrence of `job` due at `due` for `node`. True for the one caller that
/// claimed it; false when another node (or an earlier round of this one) already had.
pub async fn claim(
    tx: &mut Tx<SystemScope>,
    job: &str,
    due: OffsetDateTime,
    node: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let inserted = tx
        .execute(
            Query::new(
                "INSERT INTO scheduled_runs (job, due_at, node, claimed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job, due_at) DO NOTHING",
            )
            .bind(job)
            .bind(due)
            .bind(node)
            .bind(now),
        )
        .await?;
    Ok(inserted == 1)
}

/// The latest claimed occurrence of `job`, if it ever ran.
pub async fn latest(tx: &mut Tx<SystemScope>, job: &str) -> Result<Option<OffsetDateTime>> {
    let row: Option<(OffsetDateTime,)> = tx
        .fetch_optional(
            Query::new(
                "SELECT due_at FROM scheduled_runs WHERE job = $1 ORDER BY due_at DESC LIMIT 1",
            )
            .bind(job),
        )
        .await?;
    Ok(row.map(|(t,)| t))
}

/// Forgets the claims of `job` due before `before` (kept as long as the archives they made).
pub async fn prune(tx: &mut Tx<SystemScope>, job: &str, before: OffsetDateTime) -> Result<u64> {
    tx.execute(
        Query::new("DELETE FROM scheduled_runs WHERE job = $1 AND due_at < $2")
            .bind(job)
            .bind(before),
    )
    .await
}
