//! The durable record of Meta's webhook POSTs: each verified body is stored verbatim before the
//! 200 and processed afterwards (see `core::whatsapp::inbound`), so a crash between the
//! acknowledgement and the processing loses nothing.
//!
//! Writes here are system work: the request carries no credential of ours, the connection named
//! in the URL gives the tenant, and every statement binds it explicitly.

use crate::{Backend, Query, Result, SystemScope, Tx};
use palisade_domain::{ConnectionId, InboundEventId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct InboundEvent {
    pub id: InboundEventId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub body: Vec<u8>,
    pub received_at: OffsetDateTime,
    pub processed_at: Option<OffsetDateTime>,
    pub attempts: i64,
    pub error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    tenant_id: Uuid,
    connection_id: Uuid,
    body: Vec<u8>,
    received_at: OffsetDateTime,
    processed_at: Option<OffsetDateTime>,
    attempts: i64,
    error: Option<String>,
}

impl From<Row> for InboundEvent {
    fn from(r: Row) -> Self {
        InboundEvent {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            connection_id: r.connection_id.into(),
            body: r.body,
            received_at: r.received_at,
            processed_at: r.processed_at,
            attempts: r.attempts,
            error: r.error,
        }
    }
}

const COLUMNS: &str =
    "id, tenant_id, connection_id, body, received_at, processed_at, attempts, error";

pub async fn insert(tx: &mut Tx<SystemScope>, e: &InboundEvent) -> Result<()> {
    tx.execute(
        Query::new(format!(
            "INSERT INTO whatsapp_inbound_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(e.id)
        .bind(e.tenant_id)
        .bind(e.connection_id)
        .bind(e.body.clone())
        .bind(e.received_at)
        .bind(e.processed_at)
        .bind(e.attempts)
        .bind(e.error.clone()),
    )
    .await?;
    Ok(())
}

/// Inserts `events`: on PostgreSQL in one `unnest` statement (each row's key checks and the
/// statement are planned once, not once per event); on SQLite one by one (prepared statements
/// there cost no planning).
pub async fn insert_all(tx: &mut Tx<SystemScope>, events: &[InboundEvent]) -> Result<()> {
    if tx.backend() == Backend::Sqlite || events.len() == 1 {
        for e in events {
            insert(tx, e).await?;
        }
        return Ok(());
    }
    tx.execute(
        Query::new(format!(
            "INSERT INTO whatsapp_inbound_events ({COLUMNS})
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bytea[],
                 $5::timestamptz[], $6::timestamptz[], $7::bigint[], $8::text[])"
        ))
        .bind(events.iter().map(|e| e.id.as_uuid()).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.tenant_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.connection_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.body.clone()).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| Some(e.received_at))
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.processed_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| Some(e.attempts)).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.error.clone()).collect::<Vec<_>>()),
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct IdRow {
    id: Uuid,
}

/// The oldest unprocessed events (every tenant), at most `limit`.
pub async fn pending(tx: &mut Tx<SystemScope>, limit: i64) -> Result<Vec<InboundEventId>> {
    let rows: Vec<IdRow> = tx
        .fetch_all(
            Query::new(
                "SELECT id FROM whatsapp_inbound_events WHERE processed_at IS NULL ORDER BY id LIMIT $1",
            )
            .bind(limit),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.id.into()).collect())
}

/// Locks one unprocessed event for the rest of the transaction. On PostgreSQL a row another
/// processor holds is skipped (`None`); SQLite's single writer serialises processors anyway.
pub async fn claim(tx: &mut Tx<SystemScope>, id: InboundEventId) -> Result<Option<InboundEvent>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    Ok(tx
        .fetch_optional::<Row>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_inbound_events
                 WHERE id = $1 AND processed_at IS NULL {lock}"
            ))
            .bind(id),
        )
        .await?
        .map(Into::into))
}

/// Marks an event processed, with the reason when it could not be (kept for inspection).
pub async fn finish(
    tx: &mut Tx<SystemScope>,
    id: InboundEventId,
    now: OffsetDateTime,
    error: Option<String>,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE whatsapp_inbound_events SET processed_at = $2, error = $3, attempts = attempts + 1
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(error),
    )
    .await?;
    Ok(())
}

/// Records a failed attempt that will be retried (the event stays unprocessed).
pub async fn record_attempt(
    tx: &mut Tx<SystemScope>,
    id: InboundEventId,
    error: &str,
) -> Result<i64> {
    tx.execute(
        Query::new(
            "UPDATE whatsapp_inbound_events SET error = $2, attempts = attempts + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(error),
    )
    .await?;
    #[derive(sqlx::FromRow)]
    struct A {
        attempts: i64,
    }
    let a: A = tx
        .fetch_one(
            Query::new("SELECT attempts FROM whatsapp_inbound_events WHERE id = $1").bind(id),
        )
        .await?;
    Ok(a.attempts)
}

/// One event by id (tests and operators).
pub async fn find(tx: &mut Tx<SystemScope>, id: InboundEventId) -> Result<Option<InboundEvent>> {
    Ok(tx
        .fetch_optional::<Row>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM whatsapp_inbound_events WHERE id = $1"
            ))
            .bind(id),
        )
        .await?
        .map(Into::into))
}

/// Drops the bodies of up to `limit` events processed before `processed_before` (the oldest
/// first): each body becomes empty and `body_pruned_at` records when. The rows stay, with their
/// id, tenant, connection and times; idempotency never reads a body (messages are keyed by
/// wamid per connection), so a redelivery of a pruned event is still recognised. Unprocessed
/// events are never touched. Returns how many bodies were dropped.
pub async fn prune_bodies(
    tx: &mut Tx<SystemScope>,
    processed_before: OffsetDateTime,
    now: OffsetDateTime,
    limit: i64,
) -> Result<u64> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    tx.execute(
        Query::new(format!(
            "UPDATE whatsapp_inbound_events SET body = $3, body_pruned_at = $2
             WHERE id IN (
                SELECT id FROM whatsapp_inbound_events
                WHERE processed_at IS NOT NULL AND body_pruned_at IS NULL AND processed_at < $1
                ORDER BY processed_at LIMIT $4 {lock})"
        ))
        .bind(processed_before)
        .bind(now)
        .bind(Vec::<u8>::new())
        .bind(limit),
    )
    .await
}
