//! Outgoing webhooks: endpoints, the durable delivery queue, the attempt log and each tenant's
//! domain allowlist. Secrets are stored only as ciphertexts (the caller encrypts them with the
//! row's identity as associated data); this module never sees a plaintext secret.
//!
//! The queue is the `webhook_deliveries` table. Events are inserted in the transaction of the
//! change that causes them ([`insert_delivery`]); the worker claims due rows with
//! [`claim_due`] (on PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the single writer
//! serialises claims) by pushing their `next_attempt_at` past a lease, so a crashed worker's
//! claims are retried when the lease runs out.
//!
//! This file holds the endpoints and the allowlist; `deliveries.rs` the queue and its attempts.

mod deliveries;

pub use deliveries::{
    attempts_since, claim_due, defer, find_delivery, insert_delivery, list_deliveries,
    record_attempt, requeue_delivery, Attempt, Delivery, DeliveryStatus,
};

use crate::{Query, Result, Scope, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{TenantId, UserId, WebhookId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    PendingApproval,
    Active,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::PendingApproval => "pending_approval",
            WebhookStatus::Active => "active",
            WebhookStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending_approval" => Some(WebhookStatus::PendingApproval),
            "active" => Some(WebhookStatus::Active),
            "disabled" => Some(WebhookStatus::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    pub secret_ciphertext: String,
    pub previous_secret_ciphertext: Option<String>,
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// `hmac_sha256` (`v1`) or `ed25519` (`v1a`).
    pub signature_algorithm: String,
    /// `whpk_…` for ed25519 endpoints (not secret); `None` for HMAC.
    pub public_key: Option<String>,
    pub created_by: UserId,
    pub approved_by: Option<UserId>,
    pub approved_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub failing_since: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: Uuid,
    tenant_id: Uuid,
    url: String,
    description: Option<String>,
    events: sqlx::types::Json<Vec<String>>,
    status: String,
    secret_ciphertext: String,
    previous_secret_ciphertext: Option<String>,
    previous_secret_expires_at: Option<OffsetDateTime>,
    signature_algorithm: String,
    public_key: Option<String>,
    created_by: Uuid,
    approved_by: Option<Uuid>,
    approved_at: Option<OffsetDateTime>,
    disabled_reason: Option<String>,
    consecutive_failures: i64,
    failing_since: Option<OffsetDateTime>,
    last_success_at: Option<OffsetDateTime>,
    last_failure_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(r: WebhookRow) -> Result<Self> {
        Ok(Webhook {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            url: r.url,
            description: r.description,
            events: r.events.0,
            status: WebhookStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Integrity(format!("unknown webhook status {:?}", r.status))
            })?,
            secret_ciphertext: r.secret_ciphertext,
            previous_secret_ciphertext: r.previous_secret_ciphertext,
            previous_secret_expires_at: r.previous_secret_expires_at,
            signature_algorithm: r.signature_algorithm,
            public_key: r.public_key,
            created_by: r.created_by.into(),
            approved_by: r.approved_by.map(Into::into),
            approved_at: r.approved_at,
            disabled_reason: r.disabled_reason,
            consecutive_failures: r.consecutive_failures,
            failing_since: r.failing_since,
            last_success_at: r.last_success_at,
            last_failure_at: r.last_failure_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, url, description, events, status, secret_ciphertext, \
    previous_secret_ciphertext, previous_secret_expires_at, signature_algorithm, created_by, \
    approved_by, approved_at, disabled_reason, consecutive_failures, failing_since, \
    last_success_at, last_failure_at, created_at, updated_at, public_key";

fn rows(rows: Vec<WebhookRow>) -> Result<Vec<Webhook>> {
    rows.into_iter().map(Webhook::try_from).collect()
}

/// Refuses a tenant-scoped transaction touching another tenant's rows.
fn check_tenant<S: Scope>(tx: &Tx<S>, tenant: TenantId) -> Result<()> {
    match tx.scope().tenant() {
        Some(t) if t != tenant => Err(StoreError::Integrity(
            "webhook outside the scope's tenant".into(),
        )),
        _ => Ok(()),
    }
}

pub async fn insert(tx: &mut Tx<TenantScope>, w: &Webhook) -> Result<()> {
    check_tenant(tx, w.tenant_id)?;
    tx.execute(
        Query::new(
            "INSERT INTO webhooks (id, tenant_id, url, description, events, status, secret_ciphertext,
                signature_algorithm, created_by, approved_by, approved_at, created_at, updated_at,
                public_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
        )
        .bind(w.id)
        .bind(w.tenant_id)
        .bind(w.url.as_str())
        .bind(w.description.clone())
        .bind(serde_json::json!(w.events))
        .bind(w.status.as_str())
        .bind(w.secret_ciphertext.as_str())
        .bind(w.signature_algorithm.as_str())
        .bind(w.created_by)
        .bind(w.approved_by)
        .bind(w.approved_at)
        .bind(w.created_at)
        .bind(w.public_key.clone()),
    )
    .await?;
    Ok(())
}

pub async fn count(tx: &mut Tx<TenantScope>) -> Result<i64> {
    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }
    let tenant = tx.scope().tenant_id();
    let n: N = tx
        .fetch_one(
            Query::new("SELECT COUNT(*) AS n FROM webhooks WHERE tenant_id = $1").bind(tenant),
        )
        .await?;
    Ok(n.n)
}

pub async fn find<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Option<Webhook>> {
    select_one(tx, tenant, id, "").await
}

/// [`find`], locking the row until the transaction ends: for every read-modify-write of an
/// endpoint ([`update`] writes back every field it read). On PostgreSQL (READ COMMITTED) two
/// writers that both read first would each write back what they read, and the later one would
/// silently undo the other's change — a rotated secret that never signs, an admin's edit reverted
/// by the delivery worker, a failure not counted. `FOR UPDATE` makes the second reader wait for the
/// first to commit and read its result. On SQLite write transactions already run one at a time.
pub async fn find_for_update<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Option<Webhook>> {
    let lock = tx.row_lock();
    select_one(tx, tenant, id, lock).await
}

async fn select_one<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    id: WebhookId,
    lock: &str,
) -> Result<Option<Webhook>> {
    check_tenant(tx, tenant)?;
    tx.fetch_optional::<WebhookRow>(
        Query::new(format!(
            "SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND tenant_id = $2 {lock}"
        ))
        .bind(id)
        .bind(tenant),
    )
    .await?
    .map(Webhook::try_from)
    .transpose()
}

pub async fn list(tx: &mut Tx<TenantScope>) -> Result<Vec<Webhook>> {
    let tenant = tx.scope().tenant_id();
    rows(
        tx.fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id"
            ))
            .bind(tenant),
        )
        .await?,
    )
}

/// The tenant's active endpoints (to fan an event out to).
pub async fn list_active<S: Scope>(tx: &mut Tx<S>, tenant: TenantId) -> Result<Vec<Webhook>> {
    check_tenant(tx, tenant)?;
    rows(
        tx.fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = $1 AND status = 'active'
                 ORDER BY created_at, id"
            ))
            .bind(tenant),
        )
        .await?,
    )
}

/// Writes every mutable field of `w`; read `w` with [`find_for_update`] in the same transaction.
pub async fn update<S: Scope>(tx: &mut Tx<S>, w: &Webhook) -> Result<()> {
    check_tenant(tx, w.tenant_id)?;
    tx.execute(
        Query::new(
            "UPDATE webhooks SET url = $3, description = $4, events = $5, status = $6,
                secret_ciphertext = $7, previous_secret_ciphertext = $8,
                previous_secret_expires_at = $9, approved_by = $10, approved_at = $11,
                disabled_reason = $12, consecutive_failures = $13, failing_since = $14,
                last_success_at = $15, last_failure_at = $16, updated_at = $17, public_key = $18
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(w.id)
        .bind(w.tenant_id)
        .bind(w.url.as_str())
        .bind(w.description.clone())
        .bind(serde_json::json!(w.events))
        .bind(w.status.as_str())
        .bind(w.secret_ciphertext.as_str())
        .bind(w.previous_secret_ciphertext.clone())
        .bind(w.previous_secret_expires_at)
        .bind(w.approved_by)
        .bind(w.approved_at)
        .bind(w.disabled_reason.clone())
        .bind(w.consecutive_failures)
        .bind(w.failing_since)
        .bind(w.last_success_at)
        .bind(w.last_failure_at)
        .bind(w.updated_at)
        .bind(w.public_key.clone()),
    )
    .await?;
    Ok(())
}

/// Deletes an endpoint with its deliveries and attempts.
pub async fn delete(tx: &mut Tx<TenantScope>, id: WebhookId) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM webhook_attempts WHERE webhook_id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant),
    )
    .await?;
    tx.execute(
        Query::new("DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant),
    )
    .await?;
    Ok(tx
        .execute(
            Query::new("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant),
        )
        .await?
        > 0)
}

/// On reactivation of `tenant` (suspended at `suspended_at`, reactivated `now`): moves the start
/// of every failing streak of its endpoints later by the time spent suspended, so that a pause
/// (when nothing is attempted) does not count towards disabling an endpoint that has been
/// failing "for 24 hours". A streak begun during the suspension (an attempt claimed before it
/// landed) counts from `now`. Returns how many endpoints were moved.
pub async fn shift_failing_since(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    suspended_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    #[derive(sqlx::FromRow)]
    struct Failing {
        id: Uuid,
        failing_since: OffsetDateTime,
    }
    let failing: Vec<Failing> = tx
        .fetch_all(
            Query::new(
                "SELECT id, failing_since FROM webhooks
                 WHERE tenant_id = $1 AND failing_since IS NOT NULL",
            )
            .bind(tenant),
        )
        .await?;
    let mut n = 0;
    for f in failing {
        n += tx
            .execute(
                Query::new(
                    "UPDATE webhooks SET failing_since = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(f.id)
                .bind(if f.failing_since < suspended_at {
                    f.failing_since + (now - suspended_at)
                } else {
                    now
                }),
            )
            .await?;
    }
    Ok(n)
}

// ---- the tenant's allowlist ----

pub async fn allowed_domains<S: Scope>(tx: &mut Tx<S>, tenant: TenantId) -> Result<Vec<String>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        allowed_domains: sqlx::types::Json<Vec<String>>,
    }
    check_tenant(tx, tenant)?;
    Ok(tx
        .fetch_optional::<Row>(
            Query::new("SELECT allowed_domains FROM webhook_settings WHERE tenant_id = $1")
                .bind(tenant),
        )
        .await?
        .map(|r| r.allowed_domains.0)
        .unwrap_or_default())
}

pub async fn set_allowed_domains(
    tx: &mut Tx<TenantScope>,
    domains: &[String],
    by: UserId,
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(
            Query::new(
                "UPDATE webhook_settings SET allowed_domains = $2, updated_by = $3, updated_at = $4
                 WHERE tenant_id = $1",
            )
            .bind(tenant)
            .bind(serde_json::json!(domains))
            .bind(by)
            .bind(now),
        )
        .await?;
    if n == 0 {
        tx.execute(
            Query::new(
                "INSERT INTO webhook_settings (tenant_id, allowed_domains, updated_by, updated_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant)
            .bind(serde_json::json!(domains))
            .bind(by)
            .bind(now),
        )
        .await?;
    }
    Ok(())
}
