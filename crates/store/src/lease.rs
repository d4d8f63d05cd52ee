//! Claiming due rows of a work queue keyed by message (the send queue, media downloads): the
//! claim moves a row's `next_attempt_at` to the end of a lease, so a worker that dies mid-job
//! only delays it. One statement for both queues, because the subtle part (how the rows are
//! picked, below) must not be fixed in one and forgotten in the other.

use crate::{Backend, Query, Result, SystemScope, Tx};
use palisade_domain::{MessageId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A claimed row: whose message, whose tenant, and the attempts made before this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub message_id: MessageId,
    pub tenant_id: TenantId,
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    message_id: Uuid,
    tenant_id: Uuid,
    attempts: i64,
}

/// Claims up to `limit` rows of `table` due at `now` (every active tenant) that also meet
/// `only` (a condition on the table's columns, or `None`), lowest `first` (a column, or `None`)
/// first and then the longest due, moving their `next_attempt_at` to
/// `lease_until`. On PostgreSQL concurrent workers skip each other's rows. A suspended
/// tenant's rows are not claimed: they wait untouched (no attempt counted, their order kept)
/// until it is reactivated.
pub(crate) async fn claim_due(
    tx: &mut Tx<SystemScope>,
    table: &str,
    only: Option<&str>,
    first: Option<&str>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let first = first.map(|c| format!("q.{c}, ")).unwrap_or_default();
    let (due_only, update_only) = match only {
        Some(c) => (format!("AND q.{c}"), format!("AND {c}")),
        None => (String::new(), String::new()),
    };
    // The claimed rows are picked once, in a materialized CTE. As `WHERE … IN (SELECT … LIMIT n
    // FOR UPDATE SKIP LOCKED)` PostgreSQL may plan a nested-loop semi-join that rescans the
    // subquery for every candidate row; each rescan skips the rows this statement has already
    // updated and takes the next ones, so more than `limit` rows were claimed (seen in the
    // store's repository tests: 3 with a limit of 2).
    let rows: Vec<ClaimedRow> = tx
        .fetch_all(
            Query::new(format!(
                "WITH due AS MATERIALIZED (
                    SELECT q.message_id FROM {table} q
                    WHERE q.next_attempt_at <= $1 {due_only}
                      AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = q.tenant_id AND t.status = 'active')
                    ORDER BY {first}q.next_attempt_at, q.message_id LIMIT $3 {lock})
                 UPDATE {table} SET next_attempt_at = $2
                 WHERE message_id IN (SELECT message_id FROM due) {update_only}
                 RETURNING message_id, tenant_id, attempts"
            ))
            .bind(now)
            .bind(lease_until)
            .bind(limit),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            message_id: r.message_id.into(),
            tenant_id: r.tenant_id.into(),
            attempts: r.attempts,
        })
        .collect())
}
