//! `/api/v1/tickets` (tickets, their comments and attachments) and `/api/v1/attachments/{id}`
//! (an attachment's file). Ticket pages are `{data, next_cursor}`; pass `next_cursor` back as
//! `cursor`.
//!
//! An upload is `multipart/form-data` with one part named `file`. Its bytes are counted while
//! they stream in and the request is refused (`413 file_too_large`) as soon as they pass
//! `PALISADE_UPLOAD_MAX_BYTES`, so no more than that is ever held. A download is served only as
//! an attachment with the type decided from the content, `nosniff` and a CSP that forbids
//! everything (`default-src 'none'; sandbox`).

use crate::error::{render, ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::error::code;
use palisade_core::tickets::attachments::{self, IncomingFile};
use palisade_core::tickets::{
    self, NewComment, NewTicket, TicketListQuery, TicketPatch, TicketView,
};
// The OpenAPI attributes name the answers by their schema names.
use palisade_core::tickets::{AttachmentView, TicketCommentView, TicketDetailView};
use palisade_core::tickets::{
    AttachmentView as AttachmentResponse, TicketCommentView as TicketCommentResponse,
    TicketDetailView as TicketDetailResponse, TicketView as TicketResponse,
};
use palisade_domain::{AttachmentId, AttachmentOwner, TicketId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket, delete_ticket))
        .routes(routes!(add_comment))
        .routes(routes!(download_attachment))
        // The upload counts its bytes itself (see the module documentation): the JSON body
        // limit does not apply to it.
        .merge(
            utoipa_axum::router::OpenApiRouter::new()
                .routes(routes!(upload_attachment))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// Only tickets with this status.
    #[param(value_type = Option<palisade_core::tickets::view::TicketStatusSchema>, inline)]
    pub status: Option<String>,
    /// Only tickets with this priority.
    #[param(value_type = Option<palisade_core::tickets::view::TicketPrioritySchema>, inline)]
    pub priority: Option<String>,
    /// Only tickets assigned to this user.
    pub assignee_id: Option<Uuid>,
    /// Only tickets about this contact.
    pub contact_id: Option<Uuid>,
    /// Part of the subject (any case; at most 200 characters).
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50 (a value outside is brought within).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub data: Vec<TicketView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    /// 1 to 200 characters, no control characters. Required (left out: `422` naming
    /// `subject`, as an empty one, so a form shows it at the field).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    /// At most 10,000 characters.
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Default `normal`.
    #[schema(value_type = Option<palisade_core::tickets::view::TicketPrioritySchema>)]
    pub priority: Option<String>,
    /// Default `open`.
    #[schema(value_type = Option<palisade_core::tickets::view::TicketStatusSchema>)]
    pub status: Option<String>,
    /// A user of your tenant.
    pub assignee_id: Option<Uuid>,
    /// A contact of your tenant (filled from `conversation_id` when that is given).
    pub contact_id: Option<Uuid>,
    /// Open the ticket from this conversation: its contact becomes the ticket's, and public
    /// comments are sent through it.
    pub conversation_id: Option<Uuid>,
}

/// Changes to a ticket: absent fields stay as they are; `null` clears `assignee_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub subject: Option<String>,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[schema(value_type = Option<palisade_core::tickets::view::TicketPrioritySchema>)]
    pub priority: Option<String>,
    #[schema(value_type = Option<palisade_core::tickets::view::TicketStatusSchema>)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// The ticket's contact (`null` unlinks it; with a conversation, it must be that
    /// conversation's contact).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    /// The conversation the ticket belongs to; it brings its contact (`null` unlinks it).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub conversation_id: Option<Option<Uuid>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// 1 to 4096 characters.
    #[schema(min_length = 1, max_length = 4096)]
    pub body: String,
    /// `public`: also sent to the customer over WhatsApp through the ticket's conversation;
    /// `internal` (the default): the team only.
    #[schema(value_type = palisade_core::tickets::view::CommentVisibilitySchema, default = "internal")]
    #[serde(default = "internal")]
    pub visibility: String,
}

/// A comment stays with the team unless it is asked to reach the customer.
fn internal() -> String {
    "internal".to_owned()
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file (one part named `file`, with its file name).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The tenant's tickets, newest first, narrowed by status, priority, assignee, contact and a
/// part of the subject.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    params(TicketQuery),
    responses((status = 200, description = "A page of tickets", body = TicketPage),
        (status = 403, description = "Missing tickets.read (or the API key scope tickets:read)", body = ErrorBody),
        (status = 422, description = "A status or priority that is not one of the values; q longer than 200 characters", body = ErrorBody)))]
pub async fn list_tickets(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<TicketQuery>,
) -> ApiResult<Json<TicketPage>> {
    let page = tickets::list(
        &state.services,
        &p,
        TicketListQuery {
            status: q.status,
            priority: q.priority,
            assignee_id: q.assignee_id,
            contact_id: q.contact_id,
            q: q.q,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(TicketPage {
        data: page.data.iter().map(TicketView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Open a ticket (audited as `ticket.created`; webhook event `ticket.created`). With
/// `conversation_id` it is opened from that conversation and takes its contact.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    request_body = CreateTicketRequest,
    responses((status = 201, description = "The ticket", body = TicketResponse),
        (status = 403, description = "Missing tickets.write (or the API key scope tickets:write)", body = ErrorBody),
        (status = 422, description = "validation_failed naming subject, description, priority, status, assignee_id / contact_id / conversation_id (not of your tenant, or a contact_id that is not the conversation's); invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateTicketRequest>,
) -> ApiResult<(StatusCode, Json<TicketView>)> {
    let t = tickets::create(
        &state.services,
        &p,
        &meta,
        NewTicket {
            subject: req.subject,
            description: req.description,
            priority: req.priority,
            status: req.status,
            assignee_id: req.assignee_id,
            contact_id: req.contact_id,
            conversation_id: req.conversation_id,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(TicketView::from(&t))))
}

/// One ticket with its comments and attachments (oldest first).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses((status = 200, description = "The ticket", body = TicketDetailResponse),
        (status = 403, description = "Missing tickets.read", body = ErrorBody),
        (status = 404, description = "No such ticket in your tenant", body = ErrorBody)))]
pub async fn get_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TicketDetailView>> {
    let d = tickets::get(&state.services, &p, TicketId::from_uuid(id)).await?;
    Ok(Json(TicketDetailView::from(&d)))
}

/// Change a ticket's subject, description, priority, status or assignee (audited as
/// `ticket.updated`; webhook event `ticket.updated`). A request that changes nothing writes
/// nothing.
#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Ticket id")),
    request_body = UpdateTicketRequest,
    responses((status = 200, description = "The ticket", body = TicketResponse),
        (status = 403, description = "Missing tickets.write (or the API key scope tickets:write)", body = ErrorBody),
        (status = 404, description = "No such ticket in your tenant", body = ErrorBody),
        (status = 422, description = "validation_failed naming the field; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn update_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateTicketRequest>,
) -> ApiResult<Json<TicketView>> {
    let t = tickets::update(
        &state.services,
        &p,
        &meta,
        TicketId::from_uuid(id),
        TicketPatch {
            subject: req.subject,
            description: req.description,
            priority: req.priority,
            status: req.status,
            assignee_id: req.assignee_id,
            contact_id: req.contact_id,
            conversation_id: req.conversation_id,
        },
    )
    .await?;
    Ok(Json(TicketView::from(&t)))
}

/// Delete a ticket with its comments and attachments (audited as `ticket.deleted`; files no
/// other attachment uses are removed). Admins, or API keys with `tickets:delete`.
#[utoipa::path(delete, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Missing tickets.delete (agents; API keys without tickets:delete)", body = ErrorBody),
        (status = 404, description = "No such ticket in your tenant", body = ErrorBody)))]
pub async fn delete_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    tickets::delete(&state.services, &p, &meta, TicketId::from_uuid(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Comment on a ticket (audited as `ticket.comment_added`; webhook event
/// `ticket.comment_added`). A `public` comment is also queued as a WhatsApp text to the
/// customer through the ticket's conversation, in the same transaction (its `message_id` names
/// the message); it needs `conversations.write` too.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/comments", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Ticket id")),
    request_body = CommentRequest,
    responses((status = 201, description = "The comment", body = TicketCommentResponse),
        (status = 403, description = "Missing tickets.write, or conversations.write for a public comment (API keys: tickets:write, conversations:write)", body = ErrorBody),
        (status = 404, description = "No such ticket in your tenant", body = ErrorBody),
        (status = 409, description = "connection_disconnected: the conversation's WhatsApp connection is disconnected (public comments)", body = ErrorBody),
        (status = 422, description = "validation_failed naming body or visibility (a public comment on a ticket without a conversation); outside_customer_service_window: the customer has not written in 24 hours, so WhatsApp allows only templates; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn add_comment(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<CommentRequest>,
) -> ApiResult<(StatusCode, Json<TicketCommentView>)> {
    let c = tickets::add_comment(
        &state.services,
        &p,
        &meta,
        TicketId::from_uuid(id),
        NewComment {
            body: req.body,
            visibility: req.visibility,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(TicketCommentView::from(&c))))
}

fn upload_refused(message: &str) -> Response {
    render(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code::UNSUPPORTED_MEDIA_TYPE,
        format!("send the file as multipart/form-data with one part named file ({message})"),
        None,
    )
}

/// Attach a file to a ticket: `multipart/form-data` with one part named `file`. The type is
/// decided from the content and must be accepted (`PALISADE_UPLOAD_ALLOWED_TYPES`) and agree
/// with the name's extension; executables, scripts, HTML/SVG/XML, office documents with macros,
/// embedded objects or foreign parts, and polyglots are refused. The name is sanitised; the file
/// is stored by its SHA-256. Audited as `attachment.uploaded` (a refusal as
/// `attachment.refused`).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/attachments", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Ticket id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "The attachment", body = AttachmentResponse),
        (status = 400, description = "A malformed id or multipart body, a part other than file, or no file part", body = ErrorBody),
        (status = 403, description = "Missing tickets.write (or the API key scope tickets:write)", body = ErrorBody),
        (status = 404, description = "No such ticket in your tenant", body = ErrorBody),
        (status = 413, description = "file_too_large: larger than PALISADE_UPLOAD_MAX_BYTES", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: not a multipart/form-data body", body = ErrorBody),
        (status = 422, description = "file_type_not_allowed: the reason (type not accepted, extension mismatch, executable, script, markup, macros, foreign archive part, polyglot, not UTF-8 text) and the accepted types", body = ErrorBody),
        (status = 429, description = "upload_quota_exceeded: PALISADE_UPLOAD_QUOTA_BYTES_PER_DAY reached for today (UTC); Retry-After says when the next day starts", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn upload_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    req: Request,
) -> ApiResult<Response> {
    let owner = AttachmentOwner::Ticket(TicketId::from_uuid(id));
    let max = attachments::may_upload(&state.services, &p, owner).await?;
    let file = match read_upload(req, max).await? {
        Ok(f) => f,
        Err(refused) => return Ok(refused),
    };
    let a = attachments::upload(&state.services, &p, &meta, owner, file).await?;
    Ok((StatusCode::CREATED, Json(AttachmentView::from(&a))).into_response())
}

/// Reads an upload's one part named `file`, refusing it as soon as it passes `max` bytes
/// (`413`). A body that is not such a form is answered here (`Ok(Err(response))`: `415` or
/// `400`). Shared by every upload route.
pub(crate) async fn read_upload(
    req: Request,
    max: u64,
) -> ApiResult<Result<IncomingFile, Response>> {
    let mut form = match Multipart::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => return Ok(Err(upload_refused(&e.body_text()))),
    };
    let bad = |m: String| render(StatusCode::BAD_REQUEST, code::INVALID_BODY, m, None);
    let mut file: Option<IncomingFile> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Ok(Err(bad(format!(
                    "the multipart body is malformed: {}",
                    e.body_text()
                ))))
            }
        };
        if field.name() != Some("file") || file.is_some() {
            return Ok(Err(bad(
                "the form must have exactly one part, named file".to_owned()
            )));
        }
        let filename = field.file_name().unwrap_or_default().to_owned();
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if (bytes.len() + chunk.len()) as u64 > max {
                        return Err(ApiError(attachments::too_large(max)));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Ok(Err(bad(format!(
                        "the multipart body is malformed: {}",
                        e.body_text()
                    ))))
                }
            }
        }
        file = Some(IncomingFile { filename, bytes });
    }
    match file {
        Some(f) => Ok(Ok(f)),
        None => Ok(Err(bad("the form has no part named file".to_owned()))),
    }
}

/// Download an attachment's file, as an attachment (never displayed inline): `Content-Type`
/// the type decided from its content, `Content-Disposition` with the sanitised name (RFC 5987
/// `filename*`), `X-Content-Type-Options: nosniff`, `Content-Security-Policy: default-src
/// 'none'; sandbox`. Audited as `attachment.downloaded`.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Attachment id")),
    responses((status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"),
        (status = 403, description = "Missing tickets.read for a ticket's attachment, conversations.read for a conversation's (or the API key scopes tickets:read, conversations:read)", body = ErrorBody),
        (status = 404, description = "No such attachment in your tenant", body = ErrorBody)))]
pub async fn download_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let f = attachments::open(&state.services, &p, &meta, AttachmentId::from_uuid(id)).await?;
    Ok(super::media::file_download(
        f.object,
        &f.attachment.content_type,
        &attachments::content_disposition(&f.attachment.filename),
        "default-src 'none'; sandbox",
        "reading a stored attachment failed",
    ))
}
