//! Pipelines with their ordered stages.

use super::*;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PipelineRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    is_default: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct StageRow {
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

pub(super) const PIPELINE_COLUMNS: &str = "id, tenant_id, name, is_default, created_at, updated_at";
pub(super) const STAGE_COLUMNS: &str =
    "id, pipeline_id, name, position, probability, kind, created_at, updated_at";

pub(super) async fn with_stages(
    tx: &mut Tx<TenantScope>,
    rows: Vec<PipelineRow>,
) -> Result<Vec<Pipeline>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let stages: Vec<StageRow> = tx
            .rows_of(
                "pipeline_stages",
                STAGE_COLUMNS,
                "pipeline_id",
                r.id,
                "position, id",
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

pub(super) async fn find_pipeline_with(
    tx: &mut Tx<TenantScope>,
    id: PipelineId,
    lock: &str,
) -> Result<Option<Pipeline>> {
    let row: Option<PipelineRow> = tx.find_row("pipelines", PIPELINE_COLUMNS, id, lock).await?;
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

pub(super) async fn insert_stage(tx: &mut Tx<TenantScope>, s: &Stage) -> Result<()> {
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
pub(super) struct Count {
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
