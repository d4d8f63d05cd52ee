//! Pipelines: list (creating the default one for a tenant that has none yet), get, create,
//! change (name and the ordered stages) and delete.

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    FieldError, Permission, Pipeline, PipelineId, PipelineName, Probability, Stage, StageId,
    StageKind, TenantId,
};
use palisade_store::deals as store;
use palisade_store::{TenantScope, Tx};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// One stage as received, in the list's order.
#[derive(Debug, Clone, Default)]
pub struct StageInput {
    /// An existing stage of the pipeline to keep (its deals stay in it); absent for a new one.
    pub id: Option<Uuid>,
    pub name: String,
    /// When given, must be the stage's index in the list.
    pub position: Option<i64>,
    pub probability: i64,
    pub kind: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewPipeline {
    pub name: String,
    pub stages: Vec<StageInput>,
}

/// `None` leaves a field as it is; `stages` replaces the whole ordered list.
#[derive(Debug, Clone, Default)]
pub struct PipelinePatch {
    pub name: Option<String>,
    pub stages: Option<Vec<StageInput>>,
}

const MAX_STAGES: usize = 30;

/// The stages of `pipeline` from `input`: ids of `existing` stages kept, others new. Errors
/// name the stage by its number and its index in the list.
fn parse_stages(
    errors: &mut FieldErrors,
    pipeline: PipelineId,
    input: &[StageInput],
    existing: Option<&Pipeline>,
    now: OffsetDateTime,
) -> Vec<Stage> {
    let mut out = Vec::with_capacity(input.len());
    if input.is_empty() {
        errors.push(FieldError::new("stages", "must list at least one stage"));
        return out;
    }
    if input.len() > MAX_STAGES {
        errors.push(FieldError::new(
            "stages",
            format!("at most {MAX_STAGES} stages"),
        ));
        return out;
    }
    let mut names = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for (i, s) in input.iter().enumerate() {
        let position = i64::try_from(i).unwrap_or(i64::MAX);
        // People count stages from 1, the API's list from 0: the message gives both.
        let at = |m: &str| FieldError::new("stages", format!("stage {} (stages[{i}]): {m}", i + 1));
        let name = match PipelineName::parse("name", &s.name) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(at(&format!("name {}", e.message)));
                None
            }
        };
        if let Some(n) = &name {
            if !names.insert(n.as_str().to_lowercase()) {
                errors.push(at(&format!("the name {:?} is used twice", n.as_str())));
            }
        }
        if s.position.is_some_and(|p| p != position) {
            errors.push(at(&format!(
                "position must be its place in the list ({position}); the list's order is the \
                 stages' order"
            )));
        }
        let probability = match Probability::parse("probability", s.probability) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(at(&format!("probability {}", e.message)));
                None
            }
        };
        let kind = StageKind::parse(&s.kind);
        if kind.is_none() {
            errors.push(at("kind must be open, won or lost"));
        }
        let (id, created_at) = match s.id {
            None => (StageId::new(), now),
            Some(raw) => {
                let id = StageId::from_uuid(raw);
                if !ids.insert(id) {
                    errors.push(at("the same stage id is listed twice"));
                }
                match existing.and_then(|p| p.stage(id)) {
                    Some(old) => (id, old.created_at),
                    None => {
                        errors.push(at(&format!("{raw} is not a stage of this pipeline")));
                        (id, now)
                    }
                }
            }
        };
        if let (Some(name), Some(probability), Some(kind)) = (name, probability, kind) {
            out.push(Stage {
                id,
                pipeline_id: pipeline,
                name,
                position,
                probability,
                kind,
                created_at,
                updated_at: now,
            });
        }
    }
    if !out.is_empty() && !out.iter().any(|s| s.kind == StageKind::Open) {
        errors.push(FieldError::new(
            "stages",
            "must have at least one stage of kind open",
        ));
    }
    out
}

/// What the audit log keeps of a pipeline.
fn audit_json(p: &Pipeline) -> Value {
    json!({
        "id": p.id, "name": p.name.as_str(),
        "stages": p.stages.iter().map(|s| json!({
            "id": s.id, "name": s.name.as_str(), "position": s.position,
            "probability": s.probability.get(), "kind": s.kind.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// Creates the tenant's default pipeline in `tx` unless it has one already (two first reads at
/// once create it once: at most one default pipeline a tenant). Returns it when created.
pub async fn create_default(
    tx: &mut Tx<TenantScope>,
    tenant: TenantId,
    now: OffsetDateTime,
) -> AppResult<Option<Pipeline>> {
    let p = Pipeline::default_for(tenant, now);
    Ok(store::insert_pipeline(tx, &p).await?.then_some(p))
}

/// The tenant's pipelines, oldest first. A tenant without any (one created before pipelines
/// existed) gets the default one first.
pub async fn list_pipelines(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
) -> AppResult<Vec<Pipeline>> {
    p.require(Permission::DealsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let list = store::list_pipelines(&mut tx).await?;
    drop(tx);
    if !list.is_empty() {
        return Ok(list);
    }
    let tenant = p.tenant_scope()?.tenant_id();
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    if let Some(created) = create_default(uow.tx(), tenant, now).await? {
        uow.audit(
            uow.entry("pipeline.created")
                .target("pipeline", created.id)
                .change(None, Some(audit_json(&created)))
                .metadata(json!({ "default": true })),
        )
        .await?;
    }
    let list = store::list_pipelines(uow.tx()).await?;
    uow.commit().await?;
    Ok(list)
}

pub async fn get_pipeline(s: &Services, p: &Principal, id: PipelineId) -> AppResult<Pipeline> {
    p.require(Permission::DealsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find_pipeline(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("pipeline"))
}

pub async fn create_pipeline(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewPipeline,
) -> AppResult<Pipeline> {
    p.require(Permission::PipelinesManage)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let now = s.clock.now();
    let id = PipelineId::new();
    let mut errors = FieldErrors::new();
    let name = errors.check(PipelineName::parse("name", &new.name));
    let stages = parse_stages(&mut errors, id, &new.stages, None, now);
    let (Some(name), true) = (name, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let pipeline = Pipeline {
        id,
        tenant_id: tenant,
        name,
        is_default: false,
        stages: stages
            .into_iter()
            .map(|s| Stage {
                created_at: now,
                updated_at: now,
                ..s
            })
            .collect(),
        created_at: now,
        updated_at: now,
    };
    store::insert_pipeline(uow.tx(), &pipeline).await?;
    let stored = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("pipeline.created")
            .target("pipeline", id)
            .change(None, Some(audit_json(&stored))),
    )
    .await?;
    uow.commit().await?;
    Ok(stored)
}

async fn stored(tx: &mut Tx<TenantScope>, id: PipelineId) -> AppResult<Pipeline> {
    Ok(store::find_pipeline(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the pipeline just written is missing"))?)
}

pub async fn update_pipeline(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: PipelineId,
    patch: PipelinePatch,
) -> AppResult<Pipeline> {
    p.require(Permission::PipelinesManage)?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(patch.name, |n| PipelineName::parse("name", &n));
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::find_pipeline_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("pipeline"))?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(input) = &patch.stages {
        let mut errors = FieldErrors::new();
        after.stages = parse_stages(&mut errors, id, input, Some(&before), now);
        errors.finish()?;
        // A stage that keeps its id keeps its timestamps unless something about it changed.
        for s in &mut after.stages {
            if let Some(old) = before.stage(s.id) {
                if old.name == s.name
                    && old.position == s.position
                    && old.probability == s.probability
                    && old.kind == s.kind
                {
                    s.updated_at = old.updated_at;
                }
            }
        }
        for old in &before.stages {
            if after.stage(old.id).is_none() {
                let n = store::count_deals(uow.tx(), id, Some(old.id)).await?;
                if n > 0 {
                    return Err(AppError::conflict(
                        code::STAGE_HAS_DEALS,
                        format!(
                            "the stage {:?} ({}) still has {n} deal(s); move them to another \
                             stage before removing it",
                            old.name.as_str(),
                            old.id
                        ),
                    ));
                }
            }
        }
    }
    if after == before {
        return Ok(before);
    }
    after.updated_at = now;
    store::update_pipeline(uow.tx(), &before, &after).await?;
    let after = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("pipeline.updated")
            .target("pipeline", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after))),
    )
    .await?;
    uow.commit().await?;
    Ok(after)
}

/// Deletes a pipeline that has no deals (`409 pipeline_has_deals` otherwise, with how many),
/// unless it is the tenant's last (`409 last_pipeline`).
pub async fn delete_pipeline(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: PipelineId,
) -> AppResult<()> {
    p.require(Permission::DealsDelete)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_pipeline_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("pipeline"))?;
    let deals = store::count_deals(uow.tx(), id, None).await?;
    if deals > 0 {
        return Err(AppError::conflict(
            code::PIPELINE_HAS_DEALS,
            format!(
                "the pipeline {:?} still has {deals} deal(s); delete them or move them to \
                 another pipeline first",
                before.name.as_str()
            ),
        ));
    }
    if store::count_pipelines(uow.tx()).await? <= 1 {
        return Err(AppError::conflict(
            code::LAST_PIPELINE,
            "this is the tenant's only pipeline; create another before deleting it",
        ));
    }
    store::delete_pipeline(uow.tx(), id).await?;
    uow.audit(
        uow.entry("pipeline.deleted")
            .target("pipeline", id)
            .change(Some(audit_json(&before)), None),
    )
    .await?;
    uow.commit().await
}
