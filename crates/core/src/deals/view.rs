//! The shapes pipelines, deals and stage changes leave the server in: the REST answers and the
//! `deal.*` webhook events' data are built from these.

use palisade_domain::{rfc3339, Deal, DealStageChange, Pipeline, Stage};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = StageResponse)]
pub struct StageView {
    pub id: Uuid,
    pub name: String,
    /// 0 for the first stage, then 1, 2, … (the list's order).
    pub position: i64,
    /// The chance (percent) that a deal in this stage is won.
    #[schema(minimum = 0, maximum = 100)]
    pub probability: u8,
    /// `open`, `won` or `lost`: the status of a deal in this stage.
    #[schema(value_type = crate::deals::view::StageKindSchema)]
    pub kind: String,
}

/// `open`, `won` or `lost`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = StageKind)]
pub enum StageKindSchema {
    Open,
    Won,
    Lost,
}

impl From<&Stage> for StageView {
    fn from(s: &Stage) -> Self {
        StageView {
            id: s.id.as_uuid(),
            name: s.name.as_str().to_owned(),
            position: s.position,
            probability: s.probability.get(),
            kind: s.kind.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = PipelineResponse)]
pub struct PipelineView {
    pub id: Uuid,
    pub name: String,
    /// The pipeline the tenant was given when it was created.
    pub is_default: bool,
    /// In order.
    pub stages: Vec<StageView>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Pipeline> for PipelineView {
    fn from(p: &Pipeline) -> Self {
        PipelineView {
            id: p.id.as_uuid(),
            name: p.name.as_str().to_owned(),
            is_default: p.is_default,
            stages: p.stages.iter().map(StageView::from).collect(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = DealResponse)]
pub struct DealView {
    pub id: Uuid,
    pub title: String,
    /// The amount in the currency's minor unit (cents for EUR), never negative.
    pub value_minor: i64,
    /// ISO 4217 (`EUR`).
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    pub contact_id: Uuid,
    pub pipeline_id: Uuid,
    pub stage_id: Uuid,
    /// The kind of the deal's stage.
    #[schema(value_type = crate::deals::view::StageKindSchema)]
    pub status: String,
    pub owner_id: Option<Uuid>,
    #[schema(format = Date)]
    pub expected_close_date: Option<String>,
    pub lost_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Deal> for DealView {
    fn from(d: &Deal) -> Self {
        DealView {
            id: d.id.as_uuid(),
            title: d.title.as_str().to_owned(),
            value_minor: d.value_minor,
            currency: d.currency.as_str().to_owned(),
            contact_id: d.contact_id.as_uuid(),
            pipeline_id: d.pipeline_id.as_uuid(),
            stage_id: d.stage_id.as_uuid(),
            status: d.status.as_str().to_owned(),
            owner_id: d.owner_id.map(|u| u.as_uuid()),
            expected_close_date: d.expected_close_date.clone(),
            lost_reason: d.lost_reason.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = DealStageChangeResponse)]
pub struct DealStageChangeView {
    pub id: Uuid,
    pub deal_id: Uuid,
    /// Absent for the deal's creation.
    pub from_stage_id: Option<Uuid>,
    /// The stage's name at the time.
    pub from_stage_name: Option<String>,
    pub to_stage_id: Uuid,
    pub to_stage_name: String,
    #[schema(value_type = crate::deals::view::StageKindSchema)]
    pub to_stage_kind: String,
    /// The user who moved the deal (for an API key: its creator).
    pub changed_by: Option<Uuid>,
    /// The API key the move was made with, if any.
    pub api_key_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub changed_at: String,
}

impl From<&DealStageChange> for DealStageChangeView {
    fn from(c: &DealStageChange) -> Self {
        DealStageChangeView {
            id: c.id.as_uuid(),
            deal_id: c.deal_id.as_uuid(),
            from_stage_id: c.from_stage_id.map(|s| s.as_uuid()),
            from_stage_name: c.from_stage_name.clone(),
            to_stage_id: c.to_stage_id.as_uuid(),
            to_stage_name: c.to_stage_name.clone(),
            to_stage_kind: c.to_stage_kind.as_str().to_owned(),
            changed_by: c.changed_by.map(|u| u.as_uuid()),
            api_key_id: c.api_key_id,
            changed_at: rfc3339(c.changed_at),
        }
    }
}

/// The data of `deal.stage_changed`, `deal.won` and `deal.lost`: the deal after the move and
/// the move.
#[derive(Debug, Clone, Serialize)]
pub struct DealMoved {
    #[serde(flatten)]
    pub deal: DealView,
    pub stage_change: DealStageChangeView,
}

/// The data of `deal.deleted`: the deal as it was, marked deleted.
#[derive(Debug, Clone, Serialize)]
pub struct DealDeleted {
    #[serde(flatten)]
    pub deal: DealView,
    pub deleted: bool,
}
