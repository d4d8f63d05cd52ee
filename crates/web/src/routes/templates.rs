//! `/api/v1/whatsapp/templates`: the WhatsApp message templates of the tenant's connections,
//! synced from Meta, submitted to Meta, deleted at Meta. Pages are `{data, next_cursor}`; pass
//! `next_cursor` back as `cursor`.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::templates::{self, NewTemplateInput, TemplateListQuery};
use palisade_core::templates::{TemplateSyncView, TemplateView};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::templates::{
    TemplateSyncView as TemplateSyncResponse, TemplateView as TemplateResponse,
};
use palisade_domain::TemplateId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(sync_templates))
        .routes(routes!(get_template, delete_template))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// Only templates of this connection.
    pub connection_id: Option<Uuid>,
    /// Only templates with this Meta status (`APPROVED`, `PENDING`, `REJECTED`, `PAUSED`,
    /// `DISABLED`, `IN_APPEAL`, …; any case).
    pub status: Option<String>,
    /// Only templates of this category (`MARKETING`, `UTILITY`, `AUTHENTICATION`; any case).
    pub category: Option<String>,
    /// Part of the name.
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50 (a value outside is brought within).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplatePage {
    pub data: Vec<TemplateView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncTemplatesRequest {
    /// A connection of your tenant.
    pub connection_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    /// A connection of your tenant; the template is created in its WhatsApp Business Account.
    pub connection_id: Uuid,
    /// 1 to 512 lowercase letters, digits and underscores.
    #[schema(pattern = "^[a-z0-9_]{1,512}$")]
    pub name: String,
    /// A language code such as `en` or `en_US`.
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION` (any case).
    pub category: String,
    /// Meta's components: exactly one `BODY` (1–1024 characters), at most one `HEADER` (text of
    /// at most 60 characters with at most `{{1}}`, or a media format with
    /// `example.header_handle`), `FOOTER` (at most 60 characters, no variables) and `BUTTONS`
    /// (1–10, texts of at most 25 characters). Variables are `{{1}}`…`{{n}}` without gaps, not
    /// at the start or end of the body, each with an example (`example.body_text: [[…]]`,
    /// `example.header_text: […]`).
    #[schema(value_type = Vec<Object>)]
    pub components: serde_json::Value,
}

/// The tenant's templates, newest first, narrowed by connection, status, category and name.
#[utoipa::path(get, path = "/api/v1/whatsapp/templates", tag = "whatsapp", security(("bearer" = [])),
    params(TemplateQuery),
    responses((status = 200, description = "A page of templates", body = TemplatePage),
        (status = 403, description = "Missing templates.read (or the API key scope templates:read)", body = ErrorBody),
        (status = 422, description = "A category other than MARKETING, UTILITY or AUTHENTICATION; q longer than 512 characters", body = ErrorBody)))]
pub async fn list_templates(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> ApiResult<Json<TemplatePage>> {
    let page = templates::list(
        &state.services,
        &p,
        TemplateListQuery {
            connection_id: q.connection_id,
            status: q.status,
            category: q.category,
            q: q.q,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(TemplatePage {
        data: page.data.iter().map(TemplateView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Submit a new template to Meta. It is checked here first (every failing field named, Meta
/// not called), then created in the connection's WhatsApp Business Account and stored with
/// Meta's id as `PENDING` until Meta's review (the status webhook) approves or rejects it.
/// Audited as `template.created`; webhook event `template.created`.
#[utoipa::path(post, path = "/api/v1/whatsapp/templates", tag = "whatsapp", security(("bearer" = [])),
    request_body = CreateTemplateRequest,
    responses((status = 201, description = "The template, as submitted", body = TemplateResponse),
        (status = 403, description = "Missing templates.manage (agents; API keys without templates:write)", body = ErrorBody),
        (status = 409, description = "The connection already has this name in this language (`template_exists`), or it is disconnected (`connection_disconnected`)", body = ErrorBody),
        (status = 422, description = "validation_failed naming name, language, category, connection_id or the component at fault (`components.body.text`, `components.body.example`, …); `meta_refused` with Meta's error; invalid_body for wrong types or unknown fields", body = ErrorBody),
        (status = 503, description = "The Graph API could not be reached", body = ErrorBody)))]
pub async fn create_template(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateTemplateRequest>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let t = templates::create(
        &state.services,
        &p,
        &meta,
        NewTemplateInput {
            connection_id: req.connection_id,
            name: req.name,
            language: req.language,
            category: req.category,
            components: req.components,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(TemplateView::from(&t))))
}

/// Pull every template of the connection's WhatsApp Business Account from Meta (all pages) and
/// make the stored ones match: new ones added, changed ones updated, ones Meta no longer has
/// deleted. Audited as `template.synced`; webhook events `template.created`,
/// `template.updated`, `template.deleted`.
#[utoipa::path(post, path = "/api/v1/whatsapp/templates/sync", tag = "whatsapp", security(("bearer" = [])),
    request_body = SyncTemplatesRequest,
    responses((status = 200, description = "What changed", body = TemplateSyncResponse),
        (status = 403, description = "Missing templates.manage (agents; API keys without templates:write)", body = ErrorBody),
        (status = 409, description = "The connection is disconnected (`connection_disconnected`)", body = ErrorBody),
        (status = 422, description = "connection_id is not a connection of your tenant; `meta_refused` with Meta's error; invalid_body", body = ErrorBody),
        (status = 503, description = "The Graph API could not be reached", body = ErrorBody)))]
pub async fn sync_templates(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<SyncTemplatesRequest>,
) -> ApiResult<Json<TemplateSyncView>> {
    let r = templates::sync(&state.services, &p, &meta, req.connection_id).await?;
    Ok(Json(r))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/whatsapp/templates/{id}", tag = "whatsapp", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 200, description = "The template", body = TemplateResponse),
        (status = 403, description = "Missing templates.read", body = ErrorBody),
        (status = 404, description = "No such template in your tenant", body = ErrorBody)))]
pub async fn get_template(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TemplateView>> {
    let t = templates::get(&state.services, &p, TemplateId::from_uuid(id)).await?;
    Ok(Json(TemplateView::from(&t)))
}

/// Delete a template (this language) at Meta, then here. Audited as `template.deleted`;
/// webhook event `template.deleted`.
#[utoipa::path(delete, path = "/api/v1/whatsapp/templates/{id}", tag = "whatsapp", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Template id")),
    responses((status = 204, description = "Deleted at Meta and here"),
        (status = 403, description = "Missing templates.delete (agents; API keys without templates:delete)", body = ErrorBody),
        (status = 404, description = "No such template in your tenant", body = ErrorBody),
        (status = 409, description = "Its connection is disconnected (`connection_disconnected`)", body = ErrorBody),
        (status = 422, description = "`meta_refused` with Meta's error", body = ErrorBody),
        (status = 503, description = "The Graph API could not be reached", body = ErrorBody)))]
pub async fn delete_template(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    templates::delete(&state.services, &p, &meta, TemplateId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
