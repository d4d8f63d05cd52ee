//! The statements shared by the outboxes (`mail_outbox`, `alert_webhook_outbox`): rows written
//! in the transaction of the change that causes them, claimed by a worker with a lease
//! (`locked_until`), then recorded `sent`, retried later, or `failed`. One copy of each
//! statement, because the subtle part (a claim that two workers cannot both win, an outcome
//! recorded only while the row is still pending) must not be fixed in one outbox and
//! forgotten in the other. The tables have the same queue columns (see their migrations).

use crate::db::FromAnyRow;
use crate::{Backend, Query, Result, SystemScope, Tx};
use std::marker::PhantomData;
use time::OffsetDateTime;
use uuid::Uuid;

/// An outbox table: its name is a constant, never input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outbox {
    Mail,
    AlertWebhook,
}

impl Outbox {
    fn table(self) -> &'static str {
        match self {
            Outbox::Mail => "mail_outbox",
            Outbox::AlertWebhook => "alert_webhook_outbox",
        }
    }
}

/// One outbox's queue statements, typed by its ids (`I`) and by what a claim returns (`T`):
/// `mail_outbox::QUEUE`, `alert_webhook_outbox::QUEUE`.
pub struct Queue<I, T> {
    outbox: Outbox,
    /// The columns a claim returns, as `T` reads them.
    returning: &'static str,
    types: PhantomData<fn(I) -> T>,
}

impl<I, T> Queue<I, T> {
    pub(crate) const fn new(outbox: Outbox, returning: &'static str) -> Self {
        Queue {
            outbox,
            returning,
            types: PhantomData,
        }
    }
}

impl<I, T: FromAnyRow> Queue<I, T> {
    /// Claims up to `limit` due pending rows (every tenant: system work) by setting their
    /// lease `locked_until` to `lease_until`. A row is due when its `next_attempt_at` has come
    /// and it has no live lease; a lease that ran out (a worker that died mid-send) makes it
    /// due again.
    ///
    /// Safe with several workers: on PostgreSQL concurrent claims skip each other's rows
    /// (`FOR UPDATE SKIP LOCKED`), on SQLite the single writer runs one claim at a time, and
    /// the update is conditional on the row still being unleased either way.
    pub async fn claim_due(
        &self,
        tx: &mut Tx<SystemScope>,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<T>> {
        let table = self.outbox.table();
        let returning = self.returning;
        let lock = match tx.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // A materialized CTE picks the rows once (see `send_queue::claim_sends` for why).
        tx.fetch_all(
            Query::new(format!(
                "WITH due AS MATERIALIZED (
                    SELECT id FROM {table}
                    WHERE status = 'pending' AND next_attempt_at <= $1
                      AND (locked_until IS NULL OR locked_until <= $1)
                    ORDER BY next_attempt_at, id LIMIT $3 {lock})
                 UPDATE {table} SET locked_until = $2
                 WHERE id IN (SELECT id FROM due) AND status = 'pending'
                   AND (locked_until IS NULL OR locked_until <= $1)
                 RETURNING {returning}"
            ))
            .bind(now)
            .bind(lease_until)
            .bind(limit),
        )
        .await
    }
}

impl<I: Into<Uuid>, T> Queue<I, T> {
    /// The row was accepted: `sent`, its payload dropped. Only while it is still pending (a
    /// row a slower worker also sent after its lease ran out is recorded once).
    pub async fn mark_sent(
        &self,
        tx: &mut Tx<SystemScope>,
        id: I,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.settle(tx, id, "status = 'sent', payload = '', sent_at = $2", |q| {
            q.bind(now)
        })
        .await
    }

    /// A transient failure: counts the attempt, records why and frees the row for
    /// `next_attempt_at`.
    pub async fn retry(
        &self,
        tx: &mut Tx<SystemScope>,
        id: I,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<bool> {
        self.settle(tx, id, "next_attempt_at = $2, last_error = $3", |q| {
            q.bind(next_attempt_at).bind(error)
        })
        .await
    }

    /// Given up (a permanent refusal, or too many attempts): `failed` with the reason, the
    /// payload dropped.
    pub async fn mark_failed(&self, tx: &mut Tx<SystemScope>, id: I, error: &str) -> Result<bool> {
        self.settle(
            tx,
            id,
            "status = 'failed', payload = '', last_error = $2",
            |q| q.bind(error),
        )
        .await
    }

    /// Records an attempt's outcome on row `id` (`$1`): counts the attempt, frees the lease
    /// and sets `set` (its values bound from `$2` by `bind`), only while the row is still
    /// pending. Whether it was.
    async fn settle(
        &self,
        tx: &mut Tx<SystemScope>,
        id: I,
        set: &str,
        bind: impl FnOnce(Query) -> Query,
    ) -> Result<bool> {
        let table = self.outbox.table();
        let id: Uuid = id.into();
        let query = Query::new(format!(
            "UPDATE {table} SET {set}, attempts = attempts + 1, locked_until = NULL
             WHERE id = $1 AND status = 'pending'"
        ))
        .bind(id);
        Ok(tx.execute(bind(query)).await? > 0)
    }

    /// Deletes sent and failed rows created before `cutoff`, at most `limit` of them. Returns
    /// how many went.
    pub async fn prune(
        &self,
        tx: &mut Tx<SystemScope>,
        cutoff: OffsetDateTime,
        limit: i64,
    ) -> Result<u64> {
        let table = self.outbox.table();
        tx.execute(
            Query::new(format!(
                "DELETE FROM {table} WHERE id IN (
                     SELECT id FROM {table}
                     WHERE status <> 'pending' AND created_at < $1 LIMIT $2)"
            ))
            .bind(cutoff)
            .bind(limit),
        )
        .await
    }
}
