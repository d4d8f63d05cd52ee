//! Deals: list (filters, pages), get, create, edit (a stage move records its history in the
//! same transaction), delete, and a deal's stage history.

use super::view::{DealDeleted, DealMoved, DealStageChangeView, DealView};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::FieldErrors;
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::deal::parse_date;
use palisade_domain::{
    ContactId, Currency, Deal, DealId, DealStageChange, DealStageChangeId, DealTitle, EventType,
    FieldError, Permission, Pipeline, PipelineId, StageId, StageKind, UserId,
};
use palisade_store::deals::{self as store, DealFilter};
use palisade_store::{TenantScope, Tx};
use serde_json::{json, Value};
use uuid::Uuid;

/// List filters as the API receives them.
#[derive(Debug, Default, Clone)]
pub struct DealListQuery {
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// `open`, `won` or `lost`.
    pub status: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct NewDeal {
    pub title: String,
    pub value_minor: i64,
    pub currency: String,
    pub contact_id: Uuid,
    pub pipeline_id: Uuid,
    /// Absent: the pipeline's first stage.
    pub stage_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub expected_close_date: Option<String>,
    pub lost_reason: Option<String>,
}

/// Changes to a deal; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct DealPatch {
    pub title: Option<String>,
    pub value_minor: Option<i64>,
    pub currency: Option<String>,
    pub contact_id: Option<Uuid>,
    /// Moving to another pipeline needs a `stage_id` of that pipeline.
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub owner_id: Option<Option<Uuid>>,
    pub expected_close_date: Option<Option<String>>,
    pub lost_reason: Option<Option<String>>,
}

fn parse_value(raw: i64) -> Result<i64, FieldError> {
    if raw < 0 {
        Err(FieldError::new(
            "value_minor",
            "must be zero or more (an amount in the currency's minor unit, e.g. cents)",
        ))
    } else {
        Ok(raw)
    }
}

fn parse_reason(raw: &str) -> Result<Option<String>, FieldError> {
    let s = raw.trim();
    if s.chars().count() > 500 {
        return Err(FieldError::new(
            "lost_reason",
            "must be at most 500 characters",
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            "lost_reason",
            "must not contain control characters",
        ));
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// What the audit log keeps of a deal: ids, stage, amount and dates, never the title or the
/// lost reason (free text that may name people).
fn audit_json(d: &Deal) -> Value {
    json!({
        "id": d.id, "contact_id": d.contact_id, "pipeline_id": d.pipeline_id,
        "stage_id": d.stage_id, "status": d.status.as_str(), "owner_id": d.owner_id,
        "value_minor": d.value_minor, "currency": d.currency.as_str(),
        "expected_close_date": d.expected_close_date,
    })
}

/// The fields other than the stage whose values differ.
fn changed_fields(a: &Deal, b: &Deal) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("title", a.title != b.title);
    check("value_minor", a.value_minor != b.value_minor);
    check("currency", a.currency != b.currency);
    check("contact_id", a.contact_id != b.contact_id);
    check("owner_id", a.owner_id != b.owner_id);
    check(
        "expected_close_date",
        a.expected_close_date != b.expected_close_date,
    );
    check("lost_reason", a.lost_reason != b.lost_reason);
    out
}

/// The contact must be one of the tenant's (`422` naming the field otherwise, as for a
/// conversation's assignee).
async fn check_contact(tx: &mut Tx<TenantScope>, id: ContactId) -> AppResult<()> {
    if palisade_store::contacts::find(tx, id).await?.is_none() {
        return Err(AppError::field(
            "contact_id",
            "must be a contact of this tenant",
        ));
    }
    Ok(())
}

async fn check_owner(tx: &mut Tx<TenantScope>, id: UserId) -> AppResult<()> {
    let user = palisade_store::users::find(tx, id).await?;
    if user.is_none_or(|u| u.deleted_at.is_some()) {
        return Err(AppError::field("owner_id", "must be a user of this tenant"));
    }
    Ok(())
}

/// The pipeline a deal is written into, share-locked (see [`store::find_pipeline_for_share`]).
async fn pipeline_of(tx: &mut Tx<TenantScope>, id: PipelineId) -> AppResult<Pipeline> {
    store::find_pipeline_for_share(tx, id)
        .await?
        .ok_or_else(|| AppError::field("pipeline_id", "must be a pipeline of this tenant"))
}

/// The stage `id` of `pipeline`: `422` when it is not one of its stages.
fn stage_in(pipeline: &Pipeline, id: StageId) -> AppResult<()> {
    if pipeline.stage(id).is_none() {
        return Err(AppError::field(
            "stage_id",
            format!(
                "is not a stage of the pipeline {:?} ({})",
                pipeline.name.as_str(),
                pipeline.id
            ),
        ));
    }
    Ok(())
}

fn change(
    p: &Principal,
    deal: &Deal,
    from: Option<(&Pipeline, StageId)>,
    to: &Pipeline,
    now: time::OffsetDateTime,
) -> DealStageChange {
    // Taken after the deal's row is locked: ids (UUID v7) then order the moves as they were
    // made.
    let to_stage = to.stage(deal.stage_id);
    DealStageChange {
        id: DealStageChangeId::new(),
        deal_id: deal.id,
        from_stage_id: from.map(|(_, s)| s),
        from_stage_name: from
            .and_then(|(pl, s)| pl.stage(s))
            .map(|s| s.name.as_str().to_owned()),
        to_stage_id: deal.stage_id,
        to_stage_name: to_stage
            .map(|s| s.name.as_str().to_owned())
            .unwrap_or_default(),
        to_stage_kind: to_stage.map_or(StageKind::Open, |s| s.kind),
        changed_by: Some(p.user_id),
        api_key_id: p.api_key().map(|k| k.id.as_uuid()),
        changed_at: now,
    }
}

pub async fn list(s: &Services, p: &Principal, q: DealListQuery) -> AppResult<Page<Deal>> {
    p.require(Permission::DealsRead)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(raw) => Some(StageKind::parse(raw).ok_or_else(|| {
            AppError::field("status", format!("{raw:?} is not one of open, won, lost"))
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let f = DealFilter {
        pipeline_id: q.pipeline_id.map(PipelineId::from_uuid),
        stage_id: q.stage_id.map(StageId::from_uuid),
        owner_id: q.owner_id.map(UserId::from_uuid),
        contact_id: q.contact_id.map(ContactId::from_uuid),
        status,
        before_id: q.cursor.map(DealId::from_uuid),
        limit: limit + 1,
    };
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list_deals(&mut tx, &f).await?;
    Ok(Page::from_overfetch(items, limit, |d| d.id.as_uuid()))
}

pub async fn get(s: &Services, p: &Principal, id: DealId) -> AppResult<Deal> {
    p.require(Permission::DealsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find_deal(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("deal"))
}

/// A deal's stage history, oldest first (its creation, then every move).
pub async fn history(s: &Services, p: &Principal, id: DealId) -> AppResult<Vec<DealStageChange>> {
    p.require(Permission::DealsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if store::find_deal(&mut tx, id).await?.is_none() {
        return Err(AppError::NotFound("deal"));
    }
    Ok(store::history(&mut tx, id).await?)
}

async fn stored(tx: &mut Tx<TenantScope>, id: DealId) -> AppResult<Deal> {
    Ok(store::find_deal(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the deal just written is missing"))?)
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewDeal,
) -> AppResult<Deal> {
    p.require(Permission::DealsWrite)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut errors = FieldErrors::new();
    let title = errors.check(DealTitle::parse("title", &new.title));
    let value = errors.check(parse_value(new.value_minor));
    let currency = errors.check(Currency::parse("currency", &new.currency));
    let date = errors.check_some(new.expected_close_date, |d| {
        parse_date("expected_close_date", &d)
    });
    let reason = errors.check_some(new.lost_reason, |r| parse_reason(&r));
    let (Some(title), Some(value_minor), Some(currency), true) =
        (title, value, currency, errors.is_empty())
    else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let contact_id = ContactId::from_uuid(new.contact_id);
    check_contact(uow.tx(), contact_id).await?;
    let owner_id = new.owner_id.map(UserId::from_uuid);
    if let Some(o) = owner_id {
        check_owner(uow.tx(), o).await?;
    }
    let pipeline = pipeline_of(uow.tx(), PipelineId::from_uuid(new.pipeline_id)).await?;
    let stage_id = match new.stage_id {
        Some(st) => {
            let st = StageId::from_uuid(st);
            stage_in(&pipeline, st)?;
            st
        }
        None => pipeline
            .stages
            .first()
            .map(|s| s.id)
            .ok_or_else(|| AppError::field("pipeline_id", "the pipeline has no stages"))?,
    };
    let status = pipeline.stage(stage_id).map_or(StageKind::Open, |s| s.kind);
    let deal = Deal {
        id: DealId::new(),
        tenant_id: tenant,
        title,
        value_minor,
        currency,
        contact_id,
        pipeline_id: pipeline.id,
        stage_id,
        status,
        owner_id,
        expected_close_date: date,
        lost_reason: reason.flatten(),
        created_at: now,
        updated_at: now,
    };
    store::insert_deal(uow.tx(), &deal).await?;
    store::insert_change(uow.tx(), &change(p, &deal, None, &pipeline, now)).await?;
    let deal = stored(uow.tx(), deal.id).await?;
    uow.audit(
        uow.entry("deal.created")
            .target("deal", deal.id)
            .change(None, Some(audit_json(&deal))),
    )
    .await?;
    uow.emit(EventType::DealCreated, &DealView::from(&deal))
        .await?;
    uow.commit().await?;
    Ok(deal)
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: DealId,
    patch: DealPatch,
) -> AppResult<Deal> {
    p.require(Permission::DealsWrite)?;
    let mut errors = FieldErrors::new();
    let title = errors.check_some(patch.title, |t| DealTitle::parse("title", &t));
    let value = errors.check_some(patch.value_minor, parse_value);
    let currency = errors.check_some(patch.currency, |c| Currency::parse("currency", &c));
    let date = patch
        .expected_close_date
        .map(|d| d.and_then(|d| errors.check(parse_date("expected_close_date", &d))));
    let reason = patch
        .lost_reason
        .map(|r| r.and_then(|r| errors.check(parse_reason(&r)).flatten()));
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_deal_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("deal"))?;
    // The time of the change is read once the row is locked (see `change`).
    let now = s.clock.now().max(uow.now());
    let mut after = before.clone();
    if let Some(t) = title {
        after.title = t;
    }
    if let Some(v) = value {
        after.value_minor = v;
    }
    if let Some(c) = currency {
        after.currency = c;
    }
    if let Some(c) = patch.contact_id {
        after.contact_id = ContactId::from_uuid(c);
        if after.contact_id != before.contact_id {
            check_contact(uow.tx(), after.contact_id).await?;
        }
    }
    if let Some(o) = patch.owner_id {
        after.owner_id = o.map(UserId::from_uuid);
        if let Some(o) = after.owner_id.filter(|o| Some(*o) != before.owner_id) {
            check_owner(uow.tx(), o).await?;
        }
    }
    if let Some(d) = date {
        after.expected_close_date = d;
    }
    if let Some(r) = reason {
        after.lost_reason = r;
    }
    let from_pipeline = pipeline_of(uow.tx(), before.pipeline_id).await?;
    let to_pipeline = match patch.pipeline_id.map(PipelineId::from_uuid) {
        Some(pl) if pl != before.pipeline_id => {
            let to = pipeline_of(uow.tx(), pl).await?;
            if patch.stage_id.is_none() {
                return Err(AppError::field(
                    "stage_id",
                    "is required when moving the deal to another pipeline",
                ));
            }
            to
        }
        _ => from_pipeline.clone(),
    };
    if let Some(st) = patch.stage_id.map(StageId::from_uuid) {
        stage_in(&to_pipeline, st)?;
        after.stage_id = st;
        after.pipeline_id = to_pipeline.id;
    }
    let changed = changed_fields(&before, &after);
    let moved = after.stage_id != before.stage_id;
    if changed.is_empty() && !moved {
        return Ok(before);
    }
    after.updated_at = now;
    store::update_deal(uow.tx(), &after).await?;
    let after = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry(if moved {
            "deal.stage_changed"
        } else {
            "deal.updated"
        })
        .target("deal", id)
        .change(Some(audit_json(&before)), Some(audit_json(&after)))
        .metadata(json!({ "fields": changed })),
    )
    .await?;
    let view = DealView::from(&after);
    if !changed.is_empty() {
        uow.emit(EventType::DealUpdated, &view).await?;
    }
    if moved {
        let c = change(
            p,
            &after,
            Some((&from_pipeline, before.stage_id)),
            &to_pipeline,
            now,
        );
        store::insert_change(uow.tx(), &c).await?;
        let data = DealMoved {
            deal: view,
            stage_change: DealStageChangeView::from(&c),
        };
        uow.emit(EventType::DealStageChanged, &data).await?;
        match (before.status, after.status) {
            (StageKind::Won, StageKind::Won) | (StageKind::Lost, StageKind::Lost) => {}
            (_, StageKind::Won) => {
                uow.emit(EventType::DealWon, &data).await?;
            }
            (_, StageKind::Lost) => {
                uow.emit(EventType::DealLost, &data).await?;
            }
            _ => {}
        }
    }
    uow.commit().await?;
    Ok(after)
}

pub async fn delete(s: &Services, p: &Principal, meta: &RequestMeta, id: DealId) -> AppResult<()> {
    p.require(Permission::DealsDelete)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_deal_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("deal"))?;
    store::delete_deal(uow.tx(), id).await?;
    uow.audit(
        uow.entry("deal.deleted")
            .target("deal", id)
            .change(Some(audit_json(&before)), None),
    )
    .await?;
    uow.emit(
        EventType::DealDeleted,
        &DealDeleted {
            deal: DealView::from(&before),
            deleted: true,
        },
    )
    .await?;
    uow.commit().await
}
