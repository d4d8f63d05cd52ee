//! `/api/v1/campaigns`: broadcast campaigns (one approved template to an audience of
//! contacts, paced per connection), their state changes, counts and recipients. Pages are
//! `{data, next_cursor}`; pass `next_cursor` back as `cursor`.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::campaigns::{
    self, Action, CampaignCountsView, CampaignListQuery, CampaignPatch, CampaignView, NewCampaign,
    RecipientQuery, RecipientView,
};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::campaigns::view::CampaignView as CampaignResponse;
use palisade_domain::CampaignId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(start_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
        .routes(routes!(cancel_campaign))
        .routes(routes!(list_recipients))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignTemplateRequest {
    /// A stored template of the connection.
    pub name: String,
    /// Its language code (`en`, `en_US`, `pt_BR`).
    pub language: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaignRequest {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// A WhatsApp connection of your tenant.
    pub connection_id: Uuid,
    /// An APPROVED template of that connection in that language.
    pub template: CampaignTemplateRequest,
    /// One per template variable (header variables first, then the body's), in order:
    /// `{"type": "literal", "value": "…"}` or `{"type": "contact_field", "field": "name" |
    /// "phone" | "email" | "custom_attributes.<key>", "fallback"?: "…"}`.
    #[serde(default = "empty_array")]
    #[schema(value_type = Vec<Object>)]
    pub parameters: serde_json::Value,
    /// `{tags?, contact_ids?, exclude_tags?}`: contacts with one of `tags` or listed in
    /// `contact_ids` (at most 10,000), minus those with one of `exclude_tags`. Absent, or with
    /// neither tags nor ids: every contact.
    #[schema(value_type = Option<Object>)]
    pub audience: Option<serde_json::Value>,
    /// RFC 3339. When in the future, `start` schedules the campaign for then.
    #[schema(format = DateTime)]
    pub scheduled_at: Option<String>,
}

fn empty_array() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

/// Changes to a draft or scheduled campaign: absent fields stay as they are; `null` clears
/// `scheduled_at`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaignRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub connection_id: Option<Uuid>,
    pub template: Option<CampaignTemplateRequest>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub parameters: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub audience: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_at: Option<Option<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    /// Only campaigns in this status.
    #[param(value_type = Option<palisade_core::campaigns::view::CampaignStatusSchema>, inline)]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50 (a value outside is brought within).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignPage {
    pub data: Vec<CampaignView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecipientListQuery {
    /// skipped, queued, sent, delivered, read or failed.
    pub status: Option<String>,
    /// `next_cursor` of the previous page (a contact id).
    pub cursor: Option<Uuid>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignRecipientPage {
    pub data: Vec<RecipientView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// The tenant's campaigns, newest first, narrowed by status, each with its counts.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    params(CampaignQuery),
    responses((status = 200, description = "A page of campaigns", body = CampaignPage),
        (status = 403, description = "Missing campaigns.read (or the API key scope campaigns:read)", body = ErrorBody),
        (status = 422, description = "A status that is not a campaign status", body = ErrorBody)))]
pub async fn list_campaigns(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<CampaignQuery>,
) -> ApiResult<Json<CampaignPage>> {
    let page = campaigns::list(
        &state.services,
        &p,
        CampaignListQuery {
            status: q.status,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(CampaignPage {
        data: page
            .data
            .iter()
            .map(|(c, n)| {
                let mut v = CampaignView::from(c);
                v.counts = Some(CampaignCountsView::from(n));
                v
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a draft campaign (audited; webhook `campaign.created`). Admins, or API keys with
/// `campaigns:write`.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", security(("bearer" = [])),
    request_body = CreateCampaignRequest,
    responses((status = 201, description = "The campaign, status draft, with its counts", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write (agents; API keys without campaigns:write)", body = ErrorBody),
        (status = 404, description = "No such WhatsApp connection in your tenant", body = ErrorBody),
        (status = 422, description = "validation_failed naming the field (name, template.name, template.language, parameters, audience.*, scheduled_at); template_not_found, template_language_unavailable, template_not_approved or template_parameter_mismatch; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateCampaignRequest>,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
    let d = campaigns::create(
        &state.services,
        &p,
        &meta,
        NewCampaign {
            name: req.name,
            connection_id: req.connection_id,
            template_name: req.template.name,
            template_language: req.template.language,
            parameters: req.parameters,
            audience: req.audience,
            scheduled_at: req.scheduled_at,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CampaignView::from(&d))))
}

/// One campaign with its counts (every targeted recipient in exactly one of skipped, queued,
/// sent, delivered, read, failed; and how many replied) and its failures by Meta's code.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.read", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody)))]
pub async fn get_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    let d = campaigns::get(&state.services, &p, CampaignId::from_uuid(id)).await?;
    Ok(Json(CampaignView::from(&d)))
}

/// Edit a draft or scheduled campaign (audited; webhook `campaign.updated`). The template is
/// checked again; a scheduled campaign's audience is written again.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    request_body = UpdateCampaignRequest,
    responses((status = 200, description = "The campaign", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write", body = ErrorBody),
        (status = 404, description = "No such campaign (or connection) in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_not_editable: the campaign is running, paused, completed or cancelled", body = ErrorBody),
        (status = 422, description = "validation_failed naming the field; template_* as for create", body = ErrorBody)))]
pub async fn update_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateCampaignRequest>,
) -> ApiResult<Json<CampaignView>> {
    let (template_name, template_language) = match req.template {
        Some(t) => (Some(t.name), Some(t.language)),
        None => (None, None),
    };
    let d = campaigns::update(
        &state.services,
        &p,
        &meta,
        CampaignId::from_uuid(id),
        CampaignPatch {
            name: req.name,
            connection_id: req.connection_id,
            template_name,
            template_language,
            parameters: req.parameters,
            audience: req.audience,
            scheduled_at: req.scheduled_at,
        },
    )
    .await?;
    Ok(Json(CampaignView::from(&d)))
}

/// Delete a campaign and its recipients (their messages stay in the conversations; audited;
/// webhook `campaign.deleted`). Admins, or API keys with `campaigns:delete`.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Missing campaigns.delete", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_running: pause or cancel it first", body = ErrorBody)))]
pub async fn delete_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    campaigns::delete(&state.services, &p, &meta, CampaignId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn act(
    state: &AppState,
    p: &palisade_core::auth::Principal,
    meta: &palisade_core::auth::RequestMeta,
    id: Uuid,
    action: Action,
) -> ApiResult<Json<CampaignView>> {
    let d = campaigns::act(&state.services, p, meta, CampaignId::from_uuid(id), action).await?;
    Ok(Json(CampaignView::from(&d)))
}

/// Start a draft: its audience is written as recipients now (skipped ones with the reason),
/// and it runs, or waits as `scheduled` when `scheduled_at` is in the future (webhook
/// `campaign.started`).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/start", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign, running or scheduled", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write", body = ErrorBody),
        (status = 404, description = "No such campaign (or its connection) in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_state_conflict: not a draft; connection_disconnected", body = ErrorBody),
        (status = 422, description = "template_* : the template is no longer sendable", body = ErrorBody)))]
pub async fn start_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    act(&state, &p, &meta, id, Action::Start).await
}

/// Pause a running or scheduled campaign: nothing more is queued (webhook `campaign.paused`).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign, paused", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_state_conflict: not running or scheduled", body = ErrorBody)))]
pub async fn pause_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    act(&state, &p, &meta, id, Action::Pause).await
}

/// Resume a paused campaign: running again, or scheduled while `scheduled_at` is ahead
/// (webhook `campaign.resumed`).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_state_conflict: not paused", body = ErrorBody)))]
pub async fn resume_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    act(&state, &p, &meta, id, Action::Resume).await
}

/// Cancel a campaign that is not completed: recipients not yet queued are skipped
/// (`cancelled`); messages already queued still go (webhook `campaign.cancelled`).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign, cancelled", body = CampaignResponse),
        (status = 403, description = "Missing campaigns.write", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody),
        (status = 409, description = "campaign_state_conflict: already completed or cancelled", body = ErrorBody)))]
pub async fn cancel_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignView>> {
    act(&state, &p, &meta, id, Action::Cancel).await
}

/// A campaign's recipients by contact id, narrowed by status: skipped (with `skip_reason`),
/// queued (not sent yet), or their message's status (sent, delivered, read, failed with
/// Meta's `error`).
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/recipients", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Campaign id"), RecipientListQuery),
    responses((status = 200, description = "A page of recipients", body = CampaignRecipientPage),
        (status = 400, description = "Malformed id or query parameter", body = ErrorBody),
        (status = 403, description = "Missing campaigns.read", body = ErrorBody),
        (status = 404, description = "No such campaign in your tenant", body = ErrorBody),
        (status = 422, description = "A status that is not a recipient status", body = ErrorBody)))]
pub async fn list_recipients(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<RecipientListQuery>,
) -> ApiResult<Json<CampaignRecipientPage>> {
    let page = campaigns::recipients(
        &state.services,
        &p,
        CampaignId::from_uuid(id),
        RecipientQuery {
            status: q.status,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(CampaignRecipientPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}
