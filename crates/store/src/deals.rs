//! Pipelines (with their ordered stages), deals and each deal's stage history, read and
//! written under the caller's [`TenantScope`]: every statement binds the scope's tenant.
//!
//! A deal's status is its stage's kind, read by joining the stage. Rows are private and come
//! out as the domain's [`Pipeline`], [`Deal`] and [`DealStageChange`]; stored values are
//! taken as stored (`from_stored`). Deleting a deal deletes its history with it.

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

// ---- pipelines ----

#[derive(Debug, sqlx::FromRow)]
struct PipelineRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    is_default: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct StageRow {
    id: Uuid,
    pipeline_id: Uuid,
    name: String,
    position: i64,
    probability: i64,
    kind: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl StageRow {
    fn into_stage(self) -> Result<Stage> {
        Ok(Stage {
            id: self.id.into(),
            pipeline_id: self.pipeline_id.into(),
            name: PipelineName::from_stored(self.name),
            position: self.position,
            probability: Probability::from_stored(self.probability),
            kind: kind(&self.kind)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const PIPELINE_COLUMNS: &str = "id, tenant_id, name, is_default, created_at, updated_at";
const STAGE_COLUMNS: &str =
    "id, pipeline_id, name, position, probability, kind, created_at, updated_at";

async fn with_stages(tx: &mut Tx<TenantScope>, rows: Vec<PipelineRow>) -> Result<Vec<Pipeline>> {
    let tenant = tx.scope().tenant_id();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let stages: Vec<StageRow> = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT {STAGE_COLUMNS} FROM pipeline_stages
                     WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position, id"
                ))
                .bind(tenant)
                .bind(r.id),
            )
            .await?;
        out.push(Pipeline {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            name: PipelineName::from_stored(r.name),
            is_default: r.is_default,
            stages: stages
                .into_iter()
                .map(StageRow::into_stage)
                .collect::<Result<_>>()?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
    }
    Ok(out)
}

/// The tenant's pipelines, oldest first, each with its stages in order.
pub async fn list_pipelines(tx: &mut Tx<TenantScope>) -> Result<Vec<Pipeline>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<PipelineRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE tenant_id = $1 ORDER BY id"
            ))
            .bind(tenant),
        )
        .await?;
    with_stages(tx, rows).await
}

async fn find_pipeline_with(
    tx: &mut Tx<TenantScope>,
    id: PipelineId,
    lock: &str,
) -> Result<Option<Pipeline>> {
    let tenant = tx.scope().tenant_id();
    let row: Option<PipelineRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    Ok(with_stages(tx, row.into_iter().collect()).await?.pop())
}

pub async fn find_pipeline(tx: &mut Tx<TenantScope>, id: PipelineId) -> Result<Option<Pipeline>> {
    find_pipeline_with(tx, id, "").await
}

/// [`find_pipeline`], locking the pipeline's row until the transaction ends: a stage change or
/// a deletion then waits for (and sees) a concurrent one (on SQLite writers already run one
/// at a time).
pub async fn find_pipeline_for_update(
    tx: &mut Tx<TenantScope>,
    id: PipelineId,
) -> Result<Option<Pipeline>> {
    let lock = tx.row_lock();
    find_pipeline_with(tx, id, lock).await
}

/// [`find_pipeline`], holding a shared lock on the pipeline's row until the transaction ends,
/// for a deal written into it: a concurrent deletion of the pipeline or removal of a stage
/// (which lock it for update) then waits for the deal, or the deal for them, and sees what they
/// did, instead of failing on a foreign key (on SQLite writers already run one at a time).
pub async fn find_pipeline_for_share(
    tx: &mut Tx<TenantScope>,
    id: PipelineId,
) -> Result<Option<Pipeline>> {
    let lock = match tx.backend() {
        crate::Backend::Postgres => "FOR SHARE",
        crate::Backend::Sqlite => "",
    };
    find_pipeline_with(tx, id, lock).await
}

async fn insert_stage(tx: &mut Tx<TenantScope>, s: &Stage) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO pipeline_stages (tenant_id, {STAGE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(tenant)
        .bind(s.id)
        .bind(s.pipeline_id)
        .bind(s.name.as_str())
        .bind(s.position)
        .bind(i64::from(s.probability.get()))
        .bind(s.kind.as_str())
        .bind(s.created_at)
        .bind(s.updated_at),
    )
    .await?;
    Ok(())
}

/// Inserts `p` with its stages. Returns false (and writes nothing) when `p` is a default
/// pipeline and the tenant already has one.
pub async fn insert_pipeline(tx: &mut Tx<TenantScope>, p: &Pipeline) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(
            Query::new(format!(
                "INSERT INTO pipelines ({PIPELINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING"
            ))
            .bind(p.id)
            .bind(tenant)
            .bind(p.name.as_str())
            .bind(p.is_default)
            .bind(p.created_at)
            .bind(p.updated_at),
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    for s in &p.stages {
        insert_stage(tx, s).await?;
    }
    Ok(true)
}

/// Writes `after` over `before` (same id): the name, and the stages — those of `before` not in
/// `after` are deleted (the caller checked that no deal is in them), the others updated or
/// inserted.
pub async fn update_pipeline(
    tx: &mut Tx<TenantScope>,
    before: &Pipeline,
    after: &Pipeline,
) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE pipelines SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(after.id)
        .bind(after.name.as_str())
        .bind(after.updated_at),
    )
    .await?;
    for old in &before.stages {
        if after.stage(old.id).is_none() {
            tx.execute(
                Query::new("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(old.id),
            )
            .await?;
        }
    }
    for s in &after.stages {
        match before.stage(s.id) {
            Some(old) if old == s => {}
            Some(_) => {
                tx.execute(
                    Query::new(
                        "UPDATE pipeline_stages SET name = $3, position = $4, probability = $5,
                             kind = $6, updated_at = $7
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant)
                    .bind(s.id)
                    .bind(s.name.as_str())
                    .bind(s.position)
                    .bind(i64::from(s.probability.get()))
                    .bind(s.kind.as_str())
                    .bind(s.updated_at),
                )
                .await?;
            }
            None => insert_stage(tx, s).await?,
        }
    }
    Ok(())
}

/// Deletes a pipeline and its stages (the caller checked it has no deals).
pub async fn delete_pipeline(tx: &mut Tx<TenantScope>, id: PipelineId) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM pipeline_stages WHERE tenant_id = $1 AND pipeline_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    tx.execute(
        Query::new("DELETE FROM pipelines WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

/// How many pipelines the tenant has.
pub async fn count_pipelines(tx: &mut Tx<TenantScope>) -> Result<i64> {
    let tenant = tx.scope().tenant_id();
    let c: Count = tx
        .fetch_one(
            Query::new("SELECT COUNT(*) AS n FROM pipelines WHERE tenant_id = $1").bind(tenant),
        )
        .await?;
    Ok(c.n)
}

/// How many deals are in `pipeline`, and in `stage` when given.
pub async fn count_deals(
    tx: &mut Tx<TenantScope>,
    pipeline: PipelineId,
    stage: Option<StageId>,
) -> Result<i64> {
    let tenant = tx.scope().tenant_id();
    let c: Count = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM deals
                 WHERE tenant_id = $1 AND pipeline_id = $2 AND ($3 IS NULL OR stage_id = $3)",
            )
            .bind(tenant)
            .bind(pipeline)
            .bind(stage),
        )
        .await?;
    Ok(c.n)
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
    let tenant = tx.scope().tenant_id();
    let rows: Vec<ChangeRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {CHANGE_COLUMNS} FROM deal_stage_history
                 WHERE tenant_id = $1 AND deal_id = $2 ORDER BY id"
            ))
            .bind(tenant)
            .bind(deal),
        )
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

// ---- the board ----

/// What the deals of one stage add up to in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTotal {
    pub stage_id: StageId,
    /// ISO 4217, as stored.
    pub currency: String,
    pub count: i64,
    /// The sum of the deals' `value_minor`: wider than one deal's value, so that no sum
    /// overflows.
    pub value_minor: i128,
}

/// The number and value of the deals of `pipeline`, per stage and currency, in one statement.
///
/// Values are summed in two parts (the billions and the rest), each of which fits a 64-bit
/// integer for any realistic number of deals, and joined in 128 bits here: a plain `SUM` of
/// large values would overflow (an error on SQLite, `numeric` on PostgreSQL).
pub async fn stage_totals(
    tx: &mut Tx<TenantScope>,
    pipeline: PipelineId,
) -> Result<Vec<StageTotal>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        stage_id: Uuid,
        currency: String,
        n: i64,
        high: i64,
        low: i64,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT stage_id, currency, COUNT(*) AS n,
                    CAST(SUM(value_minor / 1000000000) AS BIGINT) AS high,
                    CAST(SUM(value_minor % 1000000000) AS BIGINT) AS low
                 FROM deals WHERE tenant_id = $1 AND pipeline_id = $2
                 GROUP BY stage_id, currency ORDER BY stage_id, currency",
            )
            .bind(tenant)
            .bind(pipeline),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StageTotal {
            stage_id: r.stage_id.into(),
            currency: r.currency,
            count: r.n,
            value_minor: i128::from(r.high) * 1_000_000_000 + i128::from(r.low),
        })
        .collect())
}

/// A deal on the board, with the name its contact is known by (the name, else the WhatsApp
/// profile name, else the phone).
#[derive(Debug, Clone)]
pub struct BoardDeal {
    pub deal: Deal,
    pub contact_name: String,
}

/// The newest `per_stage` deals of every stage of `pipeline`, newest first, in one statement.
pub async fn board_deals(
    tx: &mut Tx<TenantScope>,
    pipeline: PipelineId,
    per_stage: i64,
) -> Result<Vec<BoardDeal>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        deal: DealRow,
        contact_name: String,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT id, tenant_id, title, value_minor, currency, contact_id, pipeline_id,
                    stage_id, stage_kind, owner_id, expected_close_date, lost_reason, created_at,
                    updated_at, contact_name
                 FROM (SELECT d.id, d.tenant_id, d.title, d.value_minor, d.currency,
                        d.contact_id, d.pipeline_id, d.stage_id, s.kind AS stage_kind,
                        d.owner_id, d.expected_close_date, d.lost_reason, d.created_at,
                        d.updated_at, COALESCE(c.name, c.wa_profile_name, c.phone) AS contact_name,
                        ROW_NUMBER() OVER (PARTITION BY d.stage_id ORDER BY d.id DESC) AS rn
                     FROM deals d
                     JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
                     JOIN contacts c ON c.tenant_id = d.tenant_id AND c.id = d.contact_id
                     WHERE d.tenant_id = $1 AND d.pipeline_id = $2) b
                 WHERE rn <= $3
                 ORDER BY id DESC",
            )
            .bind(tenant)
            .bind(pipeline)
            .bind(per_stage),
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(BoardDeal {
                deal: r.deal.into_deal()?,
                contact_name: r.contact_name,
            })
        })
        .collect()
}
