//! Pipelines (with their ordered stages), deals and each deal's stage history, read and
//! written under the caller's [`TenantScope`]: every statement binds the scope's tenant.
//!
//! A deal's status is its stage's kind, read by joining the stage. Rows are private and come
//! out as the domain's [`Pipeline`], [`Deal`] and [`DealStageChange`]; stored values are
//! taken as stored (`from_stored`). Deleting a deal deletes its history with it.

mod board;
mod pipelines;

pub use board::*;
pub use pipelines::*;

use crate::{Query, Result, StoreError, TenantScope, Tx};
use palisade_domain::{
    ContactId, Currency, Deal, DealId, DealStageChange, DealTitle, Pipeline, PipelineId,
    PipelineName, Probability, Stage, StageId, StageKind, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

fn kind(stored: &str) -> Result<StageKind> {
    StageKind::parse(stored)
        .ok_or_else(|| StoreError::Integrity(format!("unknown stage kind {stored:?}")))
}

// ---- deals ----

#[derive(Debug, sqlx::FromRow)]
struct DealRow {
    id: Uuid,
    tenant_id: Uuid,
    title: String,
    value_minor: i64,
    currency: String,
    contact_id: Uuid,
    pipeline_id: Uuid,
    stage_id: Uuid,
    stage_kind: String,
    owner_id: Option<Uuid>,
    expected_close_date: Option<String>,
    lost_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl DealRow {
    fn into_deal(self) -> Result<Deal> {
        Ok(Deal {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            title: DealTitle::from_stored(self.title),
            value_minor: self.value_minor,
            currency: Currency::from_stored(self.currency),
            contact_id: self.contact_id.into(),
            pipeline_id: self.pipeline_id.into(),
            stage_id: self.stage_id.into(),
            status: kind(&self.stage_kind)?,
            owner_id: self.owner_id.map(UserId::from_uuid),
            expected_close_date: self.expected_close_date,
            lost_reason: self.lost_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const DEAL_SELECT: &str = "SELECT d.id, d.tenant_id, d.title, d.value_minor, d.currency,
    d.contact_id, d.pipeline_id, d.stage_id, s.kind AS stage_kind, d.owner_id,
    d.expected_close_date, d.lost_reason, d.created_at, d.updated_at
    FROM deals d JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id";

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    pub pipeline_id: Option<PipelineId>,
    pub stage_id: Option<StageId>,
    pub owner_id: Option<UserId>,
    pub contact_id: Option<ContactId>,
    pub status: Option<StageKind>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<DealId>,
    pub limit: i64,
}

/// Deals matching `f`, newest first.
pub async fn list_deals(tx: &mut Tx<TenantScope>, f: &DealFilter) -> Result<Vec<Deal>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<DealRow> = tx
        .fetch_all(
            Query::new(format!(
                "{DEAL_SELECT}
                 WHERE d.tenant_id = $1 AND ($2 IS NULL OR d.id < $2)
                   AND ($3 IS NULL OR d.pipeline_id = $3) AND ($4 IS NULL OR d.stage_id = $4)
                   AND ($5 IS NULL OR d.owner_id = $5) AND ($6 IS NULL OR d.contact_id = $6)
                   AND ($7 IS NULL OR s.kind = $7)
                 ORDER BY d.id DESC LIMIT $8"
            ))
            .bind(tenant)
            .bind(f.before_id)
            .bind(f.pipeline_id)
            .bind(f.stage_id)
            .bind(f.owner_id)
            .bind(f.contact_id)
            .bind(f.status.map(StageKind::as_str))
            .bind(f.limit),
        )
        .await?;
    rows.into_iter().map(DealRow::into_deal).collect()
}

pub async fn find_deal(tx: &mut Tx<TenantScope>, id: DealId) -> Result<Option<Deal>> {
    let tenant = tx.scope().tenant_id();
    let row: Option<DealRow> = tx
        .fetch_optional(
            Query::new(format!(
                "{DEAL_SELECT} WHERE d.tenant_id = $1 AND d.id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    row.map(DealRow::into_deal).transpose()
}

/// [`find_deal`], locking the deal's row until the transaction ends, for a read-modify-write:
/// two concurrent stage moves then run one after the other, the second seeing the first's
/// stage as its `from` (on SQLite write transactions already run one at a time). The lock is
/// taken on the deal alone, then the deal read with its stage: a locking read of the join
/// would, after waiting for a concurrent move, re-check the join against the old stage and
/// find nothing.
pub async fn find_deal_for_update(tx: &mut Tx<TenantScope>, id: DealId) -> Result<Option<Deal>> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[allow(dead_code)]
        id: Uuid,
    }
    let tenant = tx.scope().tenant_id();
    let lock = tx.row_lock();
    let locked: Option<Locked> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT id FROM deals WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    if locked.is_none() {
        return Ok(None);
    }
    find_deal(tx, id).await
}

pub async fn insert_deal(tx: &mut Tx<TenantScope>, d: &Deal) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "INSERT INTO deals (id, tenant_id, title, value_minor, currency, contact_id,
                 pipeline_id, stage_id, owner_id, expected_close_date, lost_reason, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(d.id)
        .bind(tenant)
        .bind(d.title.as_str())
        .bind(d.value_minor)
        .bind(d.currency.as_str())
        .bind(d.contact_id)
        .bind(d.pipeline_id)
        .bind(d.stage_id)
        .bind(d.owner_id)
        .bind(d.expected_close_date.clone())
        .bind(d.lost_reason.clone())
        .bind(d.created_at)
        .bind(d.updated_at),
    )
    .await?;
    Ok(())
}

/// Writes every editable field of `d`.
pub async fn update_deal(tx: &mut Tx<TenantScope>, d: &Deal) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE deals SET title = $3, value_minor = $4, currency = $5, contact_id = $6,
                 pipeline_id = $7, stage_id = $8, owner_id = $9, expected_close_date = $10,
                 lost_reason = $11, updated_at = $12
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(d.id)
        .bind(d.title.as_str())
        .bind(d.value_minor)
        .bind(d.currency.as_str())
        .bind(d.contact_id)
        .bind(d.pipeline_id)
        .bind(d.stage_id)
        .bind(d.owner_id)
        .bind(d.expected_close_date.clone())
        .bind(d.lost_reason.clone())
        .bind(d.updated_at),
    )
    .await?;
    Ok(())
}

/// Deletes a deal with its stage history.
pub async fn delete_deal(tx: &mut Tx<TenantScope>, id: DealId) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM deal_stage_history WHERE tenant_id = $1 AND deal_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    tx.execute(
        Query::new("DELETE FROM deals WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(())
}

/// Deletes a contact's deals with their histories (part of erasing the contact); returns how
/// many deals.
pub async fn delete_of_contact(tx: &mut Tx<TenantScope>, contact: ContactId) -> Result<u64> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "DELETE FROM deal_stage_history WHERE tenant_id = $1 AND deal_id IN (
                 SELECT id FROM deals WHERE tenant_id = $1 AND contact_id = $2)",
        )
        .bind(tenant)
        .bind(contact),
    )
    .await?;
    tx.execute(
        Query::new("DELETE FROM deals WHERE tenant_id = $1 AND contact_id = $2")
            .bind(tenant)
            .bind(contact),
    )
    .await
}

// ---- stage history ----
#[derive(Debug, sqlx::FromRow)]
struct ChangeRow {
    id: Uuid,
    deal_id: Uuid,
    from_stage_id: Option<Uuid>,
    from_stage_name: Option<String>,
    to_stage_id: Uuid,
    to_stage_name: String,
    to_stage_kind: String,
    changed_by: Option<Uuid>,
    api_key_id: Option<Uuid>,
    changed_at: OffsetDateTime,
}

const CHANGE_COLUMNS: &str = "id, deal_id, from_stage_id, from_stage_name, to_stage_id, \
    to_stage_name, to_stage_kind, changed_by, api_key_id, changed_at";

pub async fn insert_change(tx: &mut Tx<TenantScope>, c: &DealStageChange) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO deal_stage_history (tenant_id, {CHANGE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(tenant)
        .bind(c.id)
        .bind(c.deal_id)
        .bind(c.from_stage_id)
        .bind(c.from_stage_name.clone())
        .bind(c.to_stage_id)
        .bind(c.to_stage_name.clone())
        .bind(c.to_stage_kind.as_str())
        .bind(c.changed_by)
        .bind(c.api_key_id)
        .bind(c.changed_at),
    )
    .await?;
    Ok(())
}

/// A deal's stage history, oldest first.
pub async fn history(tx: &mut Tx<TenantScope>, deal: DealId) -> Result<Vec<DealStageChange>> {
    let rows: Vec<ChangeRow> = tx
        .rows_of("deal_stage_history", CHANGE_COLUMNS, "deal_id", deal, "id")
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DealStageChange {
                id: r.id.into(),
                deal_id: r.deal_id.into(),
                from_stage_id: r.from_stage_id.map(StageId::from_uuid),
                from_stage_name: r.from_stage_name,
                to_stage_id: r.to_stage_id.into(),
                to_stage_name: r.to_stage_name,
                to_stage_kind: kind(&r.to_stage_kind)?,
                changed_by: r.changed_by.map(UserId::from_uuid),
                api_key_id: r.api_key_id,
                changed_at: r.changed_at,
            })
        })
        .collect()
}
