//! The delivery queue (`webhook_deliveries`) and its attempt log (`webhook_attempts`): queueing
//! an event in the transaction of its cause, claiming due rows under a lease, recording each
//! attempt's outcome. Separate from the endpoints because only the worker and the delivery log
//! read it, and its claim is the module's one concurrency-sensitive statement.

use super::check_tenant;
use crate::{Backend, Query, Result, Scope, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{DeliveryId, TenantId, WebhookId};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a manual retry.
    Pending,
    /// An attempt failed; another is scheduled.
    Failed,
    Delivered,
    /// Given up (retries exhausted, or the endpoint answered 410 Gone).
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "failed" => Some(DeliveryStatus::Failed),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
    /// Whether another attempt is scheduled (`next_attempt_at` means something).
    pub fn is_waiting(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Failed)
    }
}

/// One event queued for one endpoint, with the outcome of its last attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Also the `webhook-id` header: stable across retries.
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    /// The body delivered: `{type, timestamp, data}`.
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub last_response: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    tenant_id: Uuid,
    webhook_id: Uuid,
    event_type: String,
    payload: sqlx::types::Json<serde_json::Value>,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    last_attempt_at: Option<OffsetDateTime>,
    last_status: Option<i64>,
    last_error: Option<String>,
    last_latency_ms: Option<i64>,
    last_response: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            webhook_id: r.webhook_id.into(),
            event_type: r.event_type,
            payload: r.payload.0,
            status: DeliveryStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Integrity(format!("unknown delivery status {:?}", r.status))
            })?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_attempt_at: r.last_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            last_latency_ms: r.last_latency_ms,
            last_response: r.last_response,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn deliveries(rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>> {
    rows.into_iter().map(Delivery::try_from).collect()
}

const DELIVERY_COLUMNS: &str = "id, tenant_id, webhook_id, event_type, payload, status, attempts, \
    next_attempt_at, last_attempt_at, last_status, last_error, last_latency_ms, last_response, \
    created_at, updated_at";

/// Queues one event for one endpoint, in the caller's transaction.
pub async fn insert_delivery<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    webhook_id: WebhookId,
    id: DeliveryId,
    event_type: &str,
    payload: &serde_json::Value,
    now: OffsetDateTime,
) -> Result<()> {
    check_tenant(tx, tenant)?;
    tx.execute(
        Query::new(
            "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_type, payload, status,
                attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)",
        )
        .bind(id)
        .bind(tenant)
        .bind(webhook_id)
        .bind(event_type)
        .bind(payload.clone())
        .bind(now),
    )
    .await?;
    Ok(())
}

pub async fn find_delivery<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    webhook_id: WebhookId,
    id: DeliveryId,
) -> Result<Option<Delivery>> {
    check_tenant(tx, tenant)?;
    tx.fetch_optional::<DeliveryRow>(
        Query::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE id = $1 AND tenant_id = $2 AND webhook_id = $3"
        ))
        .bind(id)
        .bind(tenant)
        .bind(webhook_id),
    )
    .await?
    .map(Delivery::try_from)
    .transpose()
}

/// An endpoint's deliveries, newest first (by `created_at`, ties by id), after `before` (the
/// `(created_at, id)` of the previous page's last delivery): a row-value comparison that both
/// databases answer from the `(tenant_id, webhook_id, created_at)` index.
pub async fn list_deliveries(
    tx: &mut Tx<TenantScope>,
    webhook_id: WebhookId,
    before: Option<(OffsetDateTime, DeliveryId)>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let tenant = tx.scope().tenant_id();
    let q = match before {
        None => Query::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE tenant_id = $1 AND webhook_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(webhook_id)
        .bind(limit),
        Some((at, id)) => Query::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE tenant_id = $1 AND webhook_id = $2 AND (created_at, id) < ($3, $4)
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(tenant)
        .bind(webhook_id)
        .bind(at)
        .bind(id)
        .bind(limit),
    };
    deliveries(tx.fetch_all(q).await?)
}

/// Schedules a delivery for an immediate new attempt (manual retry).
pub async fn requeue_delivery(
    tx: &mut Tx<TenantScope>,
    id: DeliveryId,
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, updated_at = $3
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Claims up to `limit` due deliveries of active endpoints (every active tenant) by moving
/// their `next_attempt_at` to `lease_until`. On PostgreSQL concurrent workers skip each other's
/// rows. A suspended tenant's deliveries are not claimed: they wait untouched (no attempt
/// counted, no backoff) until it is reactivated.
pub async fn claim_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The claimed rows are picked once, in a materialized CTE. As `WHERE … IN (SELECT … LIMIT n
    // FOR UPDATE SKIP LOCKED)` PostgreSQL may plan a nested-loop semi-join that rescans the
    // subquery for every candidate row; each rescan skips the rows this statement has already
    // updated and takes the next ones, so more than `limit` rows were claimed (seen with the
    // send queue and media jobs in the store's repository tests).
    deliveries(
        tx.fetch_all(
        Query::new(format!(
            "WITH due AS MATERIALIZED (
                SELECT d.id FROM webhook_deliveries d
                JOIN webhooks w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id
                WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1
                  AND w.status = 'active'
                  AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = d.tenant_id AND t.status = 'active')
                ORDER BY d.next_attempt_at, d.id
                LIMIT $3 {lock})
             UPDATE webhook_deliveries SET next_attempt_at = $2
             WHERE id IN (SELECT id FROM due)
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit),
        )
        .await?,
    )
}

/// Pushes a claimed delivery back without counting an attempt (the endpoint's rate limit).
pub async fn defer(tx: &mut Tx<SystemScope>, id: DeliveryId, until: OffsetDateTime) -> Result<()> {
    tx.execute(
        Query::new("UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1")
            .bind(id)
            .bind(until),
    )
    .await?;
    Ok(())
}

/// Attempts made to an endpoint since `since` (for its per-minute limit).
pub async fn attempts_since(
    tx: &mut Tx<SystemScope>,
    webhook_id: WebhookId,
    since: OffsetDateTime,
) -> Result<i64> {
    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }
    let n: N = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM webhook_attempts WHERE webhook_id = $1 AND attempted_at > $2",
            )
            .bind(webhook_id)
            .bind(since),
        )
        .await?;
    Ok(n.n)
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempted_at: OffsetDateTime,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub response_body: Option<String>,
}

/// Records an attempt and the delivery's new state (`status`, next attempt time).
pub async fn record_attempt(
    tx: &mut Tx<SystemScope>,
    d: &Delivery,
    attempt: &Attempt,
    status: DeliveryStatus,
    next_attempt_at: OffsetDateTime,
) -> Result<()> {
    let attempts = d.attempts + 1;
    tx.execute(
        Query::new(
            "INSERT INTO webhook_attempts (id, tenant_id, webhook_id, delivery_id, attempt,
                attempted_at, status_code, error, latency_ms, response_body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(Uuid::now_v7())
        .bind(d.tenant_id)
        .bind(d.webhook_id)
        .bind(d.id)
        .bind(attempts)
        .bind(attempt.attempted_at)
        .bind(attempt.status_code)
        .bind(attempt.error.clone())
        .bind(attempt.latency_ms)
        .bind(attempt.response_body.clone()),
    )
    .await?;
    tx.execute(
        Query::new(
            "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4,
                last_attempt_at = $5, last_status = $6, last_error = $7, last_latency_ms = $8,
                last_response = $9, updated_at = $5
             WHERE id = $1",
        )
        .bind(d.id)
        .bind(status.as_str())
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(attempt.attempted_at)
        .bind(attempt.status_code)
        .bind(attempt.error.clone())
        .bind(attempt.latency_ms)
        .bind(attempt.response_body.clone()),
    )
    .await?;
    Ok(())
}
