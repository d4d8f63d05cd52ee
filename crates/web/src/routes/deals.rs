//! `/api/v1/pipelines` and `/api/v1/deals`: pipelines with their ordered stages, deals in
//! them, and each deal's stage history. Deal pages are `{data, next_cursor}`; pass
//! `next_cursor` back as `cursor`.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::routes::ListResponse;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::deals::{
    self, DealListQuery, DealPatch, DealStageChangeView, DealView, NewDeal, NewPipeline,
    PipelinePatch, PipelineView, StageInput,
};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::deals::{
    DealStageChangeView as DealStageChangeResponse, DealView as DealResponse,
    PipelineView as PipelineResponse,
};
use palisade_domain::{DealId, PipelineId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(get_pipeline, update_pipeline, delete_pipeline))
        .routes(routes!(list_deals, create_deal))
        .routes(routes!(get_deal, update_deal, delete_deal))
        .routes(routes!(deal_history))
}

// ---- pipelines ----

/// One stage, in the list's order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// An existing stage of this pipeline to keep (its deals stay in it); absent for a new
    /// stage. Only in `PATCH`.
    pub id: Option<Uuid>,
    /// 1 to 100 characters, unique in the pipeline (case-insensitive).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Optional; when given, must be the stage's index in the list (0 first).
    #[schema(minimum = 0)]
    pub position: Option<i64>,
    /// The chance (percent) that a deal in this stage is won.
    #[schema(minimum = 0, maximum = 100)]
    pub probability: i64,
    /// `open`, `won` or `lost`: the status of a deal in this stage.
    #[schema(value_type = palisade_core::deals::view::StageKindSchema)]
    pub kind: String,
}

impl From<StageRequest> for StageInput {
    fn from(s: StageRequest) -> Self {
        StageInput {
            id: s.id,
            name: s.name,
            position: s.position,
            probability: s.probability,
            kind: s.kind,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePipelineRequest {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The stages in order: 1 to 30, at least one of kind `open`.
    #[schema(min_items = 1, max_items = 30)]
    pub stages: Vec<StageRequest>,
}

/// Changes to a pipeline: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePipelineRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// The whole new ordered list: stages listed with their `id` are kept (renamed, moved,
    /// re-weighted), stages without one are added, stages of the pipeline not listed are
    /// removed (`409 stage_has_deals` if a deal is still in one).
    #[schema(min_items = 1, max_items = 30)]
    pub stages: Option<Vec<StageRequest>>,
}

/// The tenant's pipelines, oldest first, each with its stages in order. A tenant that has
/// none yet (created before pipelines existed) is given the default one first.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "deals", security(("bearer" = [])),
    responses((status = 200, description = "The pipelines", body = ListResponse<PipelineResponse>),
        (status = 403, description = "Missing deals.read (or the API key scope deals:read)", body = ErrorBody)))]
pub async fn list_pipelines(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
) -> ApiResult<Json<ListResponse<PipelineView>>> {
    let list = deals::list_pipelines(&state.services, &p, &meta).await?;
    Ok(Json(ListResponse {
        data: list.iter().map(PipelineView::from).collect(),
    }))
}

/// Create a pipeline with its ordered stages (audited as `pipeline.created`). Admins, or API
/// keys with `deals:write`.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "deals", security(("bearer" = [])),
    request_body = CreatePipelineRequest,
    responses((status = 201, description = "The pipeline", body = PipelineResponse),
        (status = 403, description = "Missing pipelines.manage (agents; API keys without deals:write)", body = ErrorBody),
        (status = 422, description = "validation_failed naming name or stages (the stage's index and what is wrong); invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_pipeline(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreatePipelineRequest>,
) -> ApiResult<(StatusCode, Json<PipelineView>)> {
    let pl = deals::create_pipeline(
        &state.services,
        &p,
        &meta,
        NewPipeline {
            name: req.name,
            stages: req.stages.into_iter().map(StageInput::from).collect(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(PipelineView::from(&pl))))
}

/// One pipeline with its stages.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Pipeline id")),
    responses((status = 200, description = "The pipeline", body = PipelineResponse),
        (status = 403, description = "Missing deals.read", body = ErrorBody),
        (status = 404, description = "No such pipeline in your tenant", body = ErrorBody)))]
pub async fn get_pipeline(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<PipelineView>> {
    let pl = deals::get_pipeline(&state.services, &p, PipelineId::from_uuid(id)).await?;
    Ok(Json(PipelineView::from(&pl)))
}

/// Rename a pipeline or replace its ordered stages (audited as `pipeline.updated`). Admins, or
/// API keys with `deals:write`. A request that changes nothing writes nothing.
#[utoipa::path(patch, path = "/api/v1/pipelines/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Pipeline id")),
    request_body = UpdatePipelineRequest,
    responses((status = 200, description = "The pipeline", body = PipelineResponse),
        (status = 403, description = "Missing pipelines.manage (agents; API keys without deals:write)", body = ErrorBody),
        (status = 404, description = "No such pipeline in your tenant", body = ErrorBody),
        (status = 409, description = "stage_has_deals: a stage left out of the list still has deals (named with how many)", body = ErrorBody),
        (status = 422, description = "validation_failed naming name or stages; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn update_pipeline(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdatePipelineRequest>,
) -> ApiResult<Json<PipelineView>> {
    let pl = deals::update_pipeline(
        &state.services,
        &p,
        &meta,
        PipelineId::from_uuid(id),
        PipelinePatch {
            name: req.name,
            stages: req
                .stages
                .map(|s| s.into_iter().map(StageInput::from).collect()),
        },
    )
    .await?;
    Ok(Json(PipelineView::from(&pl)))
}

/// Delete a pipeline and its stages (audited as `pipeline.deleted`). Admins, or API keys with
/// `deals:delete`. A pipeline that still has deals is refused, and so is the tenant's last.
#[utoipa::path(delete, path = "/api/v1/pipelines/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Pipeline id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Missing deals.delete (agents; API keys without deals:delete)", body = ErrorBody),
        (status = 404, description = "No such pipeline in your tenant", body = ErrorBody),
        (status = 409, description = "pipeline_has_deals: the pipeline still has deals (the message says how many); last_pipeline: it is the tenant's only pipeline", body = ErrorBody)))]
pub async fn delete_pipeline(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    deals::delete_pipeline(&state.services, &p, &meta, PipelineId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- deals ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DealQuery {
    /// Only deals in this pipeline.
    pub pipeline_id: Option<Uuid>,
    /// Only deals in this stage.
    pub stage_id: Option<Uuid>,
    /// Only deals owned by this user.
    pub owner_id: Option<Uuid>,
    /// Only deals with this contact.
    pub contact_id: Option<Uuid>,
    /// Only deals whose stage is of this kind.
    #[param(value_type = Option<palisade_core::deals::view::StageKindSchema>, inline)]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50 (a value outside is brought within).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealPage {
    pub data: Vec<DealView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDealRequest {
    /// 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// The amount in the currency's minor unit (cents for EUR): an integer, zero or more.
    #[schema(minimum = 0)]
    pub value_minor: i64,
    /// An ISO 4217 code (`EUR`, `USD`, `BRL`; lower case is accepted).
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// A contact of your tenant.
    pub contact_id: Uuid,
    /// A pipeline of your tenant.
    pub pipeline_id: Uuid,
    /// A stage of that pipeline; absent: its first stage.
    pub stage_id: Option<Uuid>,
    /// A user of your tenant.
    pub owner_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub expected_close_date: Option<String>,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    pub lost_reason: Option<String>,
}

/// Changes to a deal: absent fields stay as they are; `null` clears `owner_id`,
/// `expected_close_date` and `lost_reason`. Changing `stage_id` moves the deal (recorded in
/// its history); changing `pipeline_id` needs a `stage_id` of the new pipeline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDealRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    #[schema(minimum = 0)]
    pub value_minor: Option<i64>,
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    pub contact_id: Option<Uuid>,
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_close_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub lost_reason: Option<Option<String>>,
}

/// The tenant's deals, newest first, narrowed by pipeline, stage, owner, contact and status.
#[utoipa::path(get, path = "/api/v1/deals", tag = "deals", security(("bearer" = [])),
    params(DealQuery),
    responses((status = 200, description = "A page of deals", body = DealPage),
        (status = 403, description = "Missing deals.read (or the API key scope deals:read)", body = ErrorBody),
        (status = 422, description = "A status other than open, won or lost", body = ErrorBody)))]
pub async fn list_deals(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<DealQuery>,
) -> ApiResult<Json<DealPage>> {
    let page = deals::list(
        &state.services,
        &p,
        DealListQuery {
            pipeline_id: q.pipeline_id,
            stage_id: q.stage_id,
            owner_id: q.owner_id,
            contact_id: q.contact_id,
            status: q.status,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(DealPage {
        data: page.data.iter().map(DealView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a deal (audited as `deal.created`; webhook event `deal.created`; its history starts
/// with its stage).
#[utoipa::path(post, path = "/api/v1/deals", tag = "deals", security(("bearer" = [])),
    request_body = CreateDealRequest,
    responses((status = 201, description = "The deal", body = DealResponse),
        (status = 403, description = "Missing deals.write (or the API key scope deals:write)", body = ErrorBody),
        (status = 422, description = "validation_failed naming title, value_minor (negative), currency (not ISO 4217), contact_id / owner_id / pipeline_id (not of your tenant), stage_id (not a stage of the pipeline), expected_close_date or lost_reason; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_deal(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateDealRequest>,
) -> ApiResult<(StatusCode, Json<DealView>)> {
    let d = deals::create(
        &state.services,
        &p,
        &meta,
        NewDeal {
            title: req.title,
            value_minor: req.value_minor,
            currency: req.currency,
            contact_id: req.contact_id,
            pipeline_id: req.pipeline_id,
            stage_id: req.stage_id,
            owner_id: req.owner_id,
            expected_close_date: req.expected_close_date,
            lost_reason: req.lost_reason,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(DealView::from(&d))))
}

/// One deal.
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deal id")),
    responses((status = 200, description = "The deal", body = DealResponse),
        (status = 403, description = "Missing deals.read", body = ErrorBody),
        (status = 404, description = "No such deal in your tenant", body = ErrorBody)))]
pub async fn get_deal(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DealView>> {
    let d = deals::get(&state.services, &p, DealId::from_uuid(id)).await?;
    Ok(Json(DealView::from(&d)))
}

/// Change a deal or move it to another stage. A move is recorded in the deal's history with
/// who and when, in the same transaction (webhook `deal.stage_changed`, and `deal.won` or
/// `deal.lost` when the new stage is of that kind; audited as `deal.stage_changed`); other
/// changes emit `deal.updated` (audited as `deal.updated`). A request that changes nothing
/// writes nothing.
#[utoipa::path(patch, path = "/api/v1/deals/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deal id")),
    request_body = UpdateDealRequest,
    responses((status = 200, description = "The deal", body = DealResponse),
        (status = 403, description = "Missing deals.write (or the API key scope deals:write)", body = ErrorBody),
        (status = 404, description = "No such deal in your tenant", body = ErrorBody),
        (status = 422, description = "validation_failed naming the field (a stage_id that is not a stage of the deal's pipeline, a negative value_minor, an unknown currency, …); invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn update_deal(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateDealRequest>,
) -> ApiResult<Json<DealView>> {
    let d = deals::update(
        &state.services,
        &p,
        &meta,
        DealId::from_uuid(id),
        DealPatch {
            title: req.title,
            value_minor: req.value_minor,
            currency: req.currency,
            contact_id: req.contact_id,
            pipeline_id: req.pipeline_id,
            stage_id: req.stage_id,
            owner_id: req.owner_id,
            expected_close_date: req.expected_close_date,
            lost_reason: req.lost_reason,
        },
    )
    .await?;
    Ok(Json(DealView::from(&d)))
}

/// Delete a deal with its history (audited as `deal.deleted`; webhook `deal.deleted`). Admins,
/// or API keys with `deals:delete`.
#[utoipa::path(delete, path = "/api/v1/deals/{id}", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deal id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Missing deals.delete (agents; API keys without deals:delete)", body = ErrorBody),
        (status = 404, description = "No such deal in your tenant", body = ErrorBody)))]
pub async fn delete_deal(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    deals::delete(&state.services, &p, &meta, DealId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A deal's stage history, oldest first: its creation (no `from_stage_id`), then every move
/// with who made it and when.
#[utoipa::path(get, path = "/api/v1/deals/{id}/history", tag = "deals", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Deal id")),
    responses((status = 200, description = "The stage changes", body = ListResponse<DealStageChangeResponse>),
        (status = 403, description = "Missing deals.read", body = ErrorBody),
        (status = 404, description = "No such deal in your tenant", body = ErrorBody)))]
pub async fn deal_history(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ListResponse<DealStageChangeView>>> {
    let h = deals::history(&state.services, &p, DealId::from_uuid(id)).await?;
    Ok(Json(ListResponse {
        data: h.iter().map(DealStageChangeView::from).collect(),
    }))
}
