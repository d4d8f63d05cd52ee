//! `/api/v1/conversations`: what Meta's webhooks brought in, answers and notes (contacts:
//! `contacts`). Pages are `{data, next_cursor}`; pass `next_cursor` back as `cursor`.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use palisade_core::messaging;
use palisade_core::messaging::{ConversationListItemView, ConversationView, MessageView};
use palisade_domain::{AttachmentOwner, ConversationId, MessageId, MessageKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation, update_conversation))
        .routes(routes!(add_note))
        .routes(routes!(list_messages, send_message))
        // The upload counts its bytes itself (`tickets::read_upload`): the JSON body limit does
        // not apply to it.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload_conversation_attachment))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

/// Upload a file to send as WhatsApp media in this conversation: `multipart/form-data` with
/// one part named `file`, under the same checks, quota and audit as a ticket's attachment
/// (`attachment.uploaded`, a refusal `attachment.refused`). Then send it with `POST
/// /api/v1/conversations/{id}/messages` and `{"type": "image", "image": {"attachment_id":
/// "…"}}` (or `document`, `audio`, `video`, `sticker`).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/attachments", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body(content = super::tickets::UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "The attachment", body = palisade_core::tickets::AttachmentView),
        (status = 400, description = "A malformed id or multipart body, a part other than file, or no file part", body = ErrorBody),
        (status = 403, description = "Missing conversations.write (or the API key scope conversations:write)", body = ErrorBody),
        (status = 404, description = "No such conversation in your tenant", body = ErrorBody),
        (status = 413, description = "file_too_large: larger than PALISADE_UPLOAD_MAX_BYTES", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: not a multipart/form-data body", body = ErrorBody),
        (status = 422, description = "file_type_not_allowed: the reason and the accepted types", body = ErrorBody),
        (status = 429, description = "upload_quota_exceeded: PALISADE_UPLOAD_QUOTA_BYTES_PER_DAY reached for today (UTC); Retry-After says when the next day starts", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn upload_conversation_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    req: axum::extract::Request,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use palisade_core::tickets::attachments;
    let owner = AttachmentOwner::Conversation(ConversationId::from(id));
    let max = attachments::may_upload(&state.services, &p, owner).await?;
    let file = match super::tickets::read_upload(req, max).await? {
        Ok(f) => f,
        Err(refused) => return Ok(refused),
    };
    let a = attachments::upload(&state.services, &p, &meta, owner, file).await?;
    Ok((
        StatusCode::CREATED,
        Json(palisade_core::tickets::AttachmentView::from(&a)),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// `open`, `pending` or `resolved`.
    #[param(value_type = Option<crate::openapi::schemas::ConversationStatus>, inline)]
    pub status: Option<String>,
    /// A user id (conversations assigned to that user), `me` (to the caller; for an API key,
    /// its creator), or `none` or `unassigned` (assigned to nobody).
    #[param(
        pattern = r"^(me|none|unassigned|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub assignee: Option<String>,
    /// Conversations carrying this label (exact, after trimming; 1–50 characters).
    #[param(min_length = 1, max_length = 50, pattern = r"\S")]
    pub label: Option<String>,
    /// `next_cursor` of the previous page, unchanged (an opaque token; anything else is a
    /// `400 invalid_query`).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub data: Vec<ConversationListItemView>,
    /// Pass as `cursor` for the next page (conversations with older activity); `null` on the
    /// last page. An opaque token: the position of this page's last conversation.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageView>,
    /// Pass as `cursor` for the next (newer) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// The tenant's conversations by last activity, newest first: ordered by `last_message_at`
/// (the latest inbound or outbound message; an internal note does not count), ties by id,
/// optionally narrowed by status, assignee and label (all given filters apply). Each carries its
/// last message in short (`last_message`).
///
/// Paging: `next_cursor` is the position (last activity, id) of the page's last conversation,
/// and the next page holds the conversations after it. Conversations keep moving while a client
/// pages (a new message moves one to the top), and the pages stay safe: no conversation is
/// shown twice, and every conversation whose activity did not change meanwhile is shown
/// exactly once. One that moved to the top after its page was read is not shown again; one that
/// moved before its page was read is not on the later pages: it is on a fresh first page
/// (fetch it again, or follow the realtime events, to see what moved).
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, description = "A page of conversations, latest activity first", body = ConversationPage),
        (status = 400, description = "invalid_query: a cursor that is not a next_cursor of this list, or a malformed parameter", body = ErrorBody),
        (status = 403, description = "Missing conversations.read (or the API key scope conversations:read)", body = ErrorBody),
        (status = 422, description = "Unknown status, an assignee that is not a user id, me, none or unassigned, or an empty label", body = ErrorBody)))]
pub async fn list_conversations(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> ApiResult<Json<ConversationPage>> {
    let query = messaging::ConversationQuery {
        status: q.status,
        assignee: q.assignee,
        label: q.label,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = messaging::list_conversations(&state.services, &p, query).await?;
    Ok(Json(ConversationPage {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation", body = ConversationView),
        (status = 403, description = "Missing conversations.read", body = ErrorBody),
        (status = 404, description = "No such conversation in your tenant", body = ErrorBody)))]
pub async fn get_conversation(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConversationView>> {
    Ok(Json(
        messaging::get_conversation(&state.services, &p, ConversationId::from(id))
            .await?
            .into(),
    ))
}

/// A conversation's messages, oldest first (`next_cursor` leads to newer ones).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), PageQuery),
    responses((status = 200, description = "A page of messages, oldest first", body = MessagePage),
        (status = 403, description = "Missing conversations.read", body = ErrorBody),
        (status = 404, description = "No such conversation in your tenant", body = ErrorBody)))]
pub async fn list_messages(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<MessagePage>> {
    let page = messaging::list_messages(
        &state.services,
        &p,
        ConversationId::from(id),
        q.cursor.map(MessageId::from),
        q.limit,
    )
    .await?;
    Ok(Json(MessagePage {
        data: page.data.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A message to send: `{"type": "text", "text": {"body": "…"}}`,
/// `{"type": "template", "template": {"name": "…", "language": "en_US", "components": […]}}`,
/// `{"type": "image", "image": {"link": "https://…", "caption": "…"}}` (also `audio`, `video`,
/// `document`, `sticker`; instead of `link`, Meta's media `id` or the `attachment_id` of a file
/// uploaded to the conversation or to a ticket) or `{"type": "interactive", "interactive": {…}}`. Everything but a
/// template needs the customer service window to be open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SendMessageRequest {
    /// Free-form text; only within 24 hours of the contact's last message.
    Text { text: TextBody },
    /// An approved template; allowed at any time.
    Template { template: TemplateBody },
    /// `{id | link, caption?}` (Meta's media id, or an http(s) URL Meta fetches).
    Image {
        #[schema(value_type = crate::openapi::schemas::CaptionedMedia, inline)]
        image: serde_json::Value,
    },
    /// `{id | link}`.
    Audio {
        #[schema(value_type = crate::openapi::schemas::Media, inline)]
        audio: serde_json::Value,
    },
    /// `{id | link, caption?}`.
    Video {
        #[schema(value_type = crate::openapi::schemas::CaptionedMedia, inline)]
        video: serde_json::Value,
    },
    /// `{id | link, caption?, filename?}`.
    Document {
        #[schema(value_type = crate::openapi::schemas::DocumentMedia, inline)]
        document: serde_json::Value,
    },
    /// `{id | link}`.
    Sticker {
        #[schema(value_type = crate::openapi::schemas::Media, inline)]
        sticker: serde_json::Value,
    },
    /// Meta's interactive object (reply buttons, lists, …).
    Interactive {
        #[schema(value_type = crate::openapi::schemas::Interactive, inline)]
        interactive: serde_json::Value,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    /// 1 to 4096 characters, not blank.
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// The template's name: 1 to 512 lowercase letters, digits and underscores.
    #[schema(pattern = "^[a-z0-9_]{1,512}$")]
    pub name: String,
    /// A language code (`en_US`) or Meta's object `{"code": "en_US"}`.
    #[schema(value_type = crate::openapi::schemas::TemplateLanguage, inline)]
    pub language: serde_json::Value,
    /// Meta's template components (parameters), sent verbatim.
    #[schema(value_type = Option<Vec<Object>>)]
    pub components: Option<serde_json::Value>,
}

/// Send a message to the conversation's contact. It is stored `queued` and sent shortly after;
/// follow its `status` (`sent`, `delivered`, `read` or `failed` with Meta's error) through the
/// messages list.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = SendMessageRequest,
    responses((status = 202, description = "Queued for sending", body = MessageView),
        (status = 403, description = "Missing conversations.write (or the API key scope conversations:write); sending an attachment also needs the permission to read it: conversations.read for a conversation's, tickets.read for a ticket's (API key scopes conversations:read, tickets:read)", body = ErrorBody),
        (status = 404, description = "No such conversation (or attachment) in your tenant", body = ErrorBody),
        (status = 409, description = "connection_disconnected", body = ErrorBody),
        (status = 422, description = "outside_customer_service_window (send a template), media_type_not_allowed or media_too_large (an attachment WhatsApp does not accept for the message type: the accepted types or the limit are named), or an invalid message", body = ErrorBody)))]
pub async fn send_message(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let out = match req {
        SendMessageRequest::Text { text } => messaging::Outgoing::Text { body: text.body },
        SendMessageRequest::Template { template } => messaging::Outgoing::Template {
            name: template.name,
            language: template.language,
            components: template.components,
        },
        SendMessageRequest::Image { image } => media(MessageKind::Image, image),
        SendMessageRequest::Audio { audio } => media(MessageKind::Audio, audio),
        SendMessageRequest::Video { video } => media(MessageKind::Video, video),
        SendMessageRequest::Document { document } => media(MessageKind::Document, document),
        SendMessageRequest::Sticker { sticker } => media(MessageKind::Sticker, sticker),
        SendMessageRequest::Interactive { interactive } => messaging::Outgoing::Interactive {
            object: interactive,
        },
    };
    let m =
        messaging::send_message(&state.services, &p, &meta, ConversationId::from(id), out).await?;
    Ok((StatusCode::ACCEPTED, Json(m.into())))
}

fn media(kind: MessageKind, object: serde_json::Value) -> messaging::Outgoing {
    messaging::Outgoing::Media { kind, object }
}

/// Changes to a conversation; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    /// `open`, `pending` or `resolved`.
    #[schema(value_type = Option<crate::openapi::schemas::ConversationStatus>, inline)]
    pub status: Option<String>,
    /// A user of the tenant, or `null` to unassign.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// Replaces the labels (each 1–50 characters, at most 20).
    #[schema(value_type = Option<Vec<crate::openapi::schemas::Label>>, inline, max_items = 20)]
    pub labels: Option<Vec<String>>,
}

/// Change a conversation's status, assignee or labels (audited as `conversation.updated`).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = UpdateConversationRequest,
    responses((status = 200, description = "The conversation", body = ConversationView),
        (status = 403, description = "Missing conversations.write", body = ErrorBody),
        (status = 404, description = "No such conversation in your tenant", body = ErrorBody),
        (status = 409, description = "conversation_already_open: reopening while the contact has another unresolved conversation", body = ErrorBody),
        (status = 422, description = "Unknown status, an assignee who is not a user of the tenant, bad labels", body = ErrorBody)))]
pub async fn update_conversation(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateConversationRequest>,
) -> ApiResult<Json<ConversationView>> {
    let c = messaging::update_conversation(
        &state.services,
        &p,
        &meta,
        ConversationId::from(id),
        messaging::ConversationPatch {
            status: req.status,
            assignee_id: req.assignee_id,
            labels: req.labels,
        },
    )
    .await?;
    Ok(Json(c.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1 to 4096 characters, not blank.
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub body: String,
}

/// Add an internal note to a conversation: a message of type `note`, direction `internal`,
/// status `recorded`, visible to the team and never sent to the contact.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/notes", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = NoteRequest,
    responses((status = 201, description = "The note", body = MessageView),
        (status = 403, description = "Missing conversations.write", body = ErrorBody),
        (status = 404, description = "No such conversation in your tenant", body = ErrorBody),
        (status = 422, description = "Empty or too long", body = ErrorBody)))]
pub async fn add_note(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let m = messaging::add_note(
        &state.services,
        &p,
        &meta,
        ConversationId::from(id),
        &req.body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(m.into())))
}
