//! The OpenAPI 3.1 document of every route, served at `/api/v1/openapi.json`.
//!
//! Each `#[utoipa::path]` annotation documents what its handler decides (its success, its 409s,
//! its business-rule 422s…). What the request path decides before or around the handler —
//! the middleware and the extractors — is added here by [`RequestPathAnswers`], from the shape
//! of each route, so a route added later is documented the same way without anyone having to
//! remember. Tests validate the served document against the OpenAPI 3.1 schema and send every
//! route malformed ids, no credentials and wrong content types, checking that each answer is
//! listed for its operation.

use crate::routes;
use crate::AppState;
use axum::routing::get;
use axum::{Json, Router};
use std::collections::BTreeMap;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr, Required, Response};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Multi-tenant WhatsApp CRM server. Errors are always `{\"error\":{\"code\",\"message\",\"fields\"?,\"request_id\"}}`; every response carries `X-Request-Id`."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::auth::register_tenant,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::logout_all,
        routes::auth::list_sessions,
        routes::auth::revoke_session,
        routes::auth::change_password,
        routes::auth::generate_password,
        routes::auth::accept_invite,
        routes::me::me,
        routes::tenant::get_tenant,
        routes::tenant::update_tenant,
        routes::users::list_users,
        routes::users::create_user,
        routes::users::get_user,
        routes::users::update_user,
        routes::users::delete_user,
        routes::users::restore_user,
        routes::users::transfer_ownership,
        routes::users::unlock_user,
        routes::whatsapp::create_connection,
        routes::whatsapp::list_connections,
        routes::whatsapp::disconnect_connection,
        routes::whatsapp::update_connection,
        routes::whatsapp::delete_connection,
        routes::whatsapp::verify_webhook,
        routes::whatsapp::receive_webhook,
        routes::contacts::list_contacts,
        routes::contacts::create_contact,
        routes::contacts::export_contacts,
        routes::contacts::get_contact,
        routes::contacts::update_contact,
        routes::contacts::delete_contact,
        routes::messaging::list_conversations,
        routes::messaging::get_conversation,
        routes::messaging::list_messages,
        routes::messaging::send_message,
        routes::messaging::update_conversation,
        routes::messaging::add_note,
        routes::media::download,
        routes::ws::ws,
        routes::platform::list_tenants,
        routes::platform::suspend_tenant,
        routes::platform::reactivate_tenant,
        routes::platform::impersonate,
        routes::api_keys::create_key,
        routes::api_keys::list_keys,
        routes::api_keys::get_key,
        routes::api_keys::update_key,
        routes::api_keys::revoke_key,
        routes::api_keys::delete_key,
        routes::webhooks::create_webhook,
        routes::webhooks::list_webhooks,
        routes::webhooks::get_webhook,
        routes::webhooks::update_webhook,
        routes::webhooks::delete_webhook,
        routes::webhooks::approve_webhook,
        routes::webhooks::rotate_secret,
        routes::webhooks::test_webhook,
        routes::webhooks::list_deliveries,
        routes::webhooks::retry_delivery,
        routes::webhooks::get_allowed_domains,
        routes::webhooks::put_allowed_domains,
        routes::notifications::list_notifications,
        routes::notifications::mark_read,
        routes::audit::search,
        routes::audit::export,
        openapi_json,
    ),
    modifiers(&BearerAuth, &RequestPathAnswers, &AtLeastOneField, &ClosedVariants),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens, sessions, passwords"),
        (name = "me", description = "The signed-in user"),
        (name = "tenant", description = "The signed-in user's tenant"),
        (name = "users", description = "Team management"),
        (name = "whatsapp", description = "WhatsApp Business connections and Meta's webhooks"),
        (name = "contacts", description = "The people a tenant talks to on WhatsApp, and their marketing consent"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "realtime", description = "The websocket of live inbox events (docs/realtime.md)"),
        (name = "admin", description = "Platform administration (super admins)"),
        (name = "api-keys", description = "Scoped API keys for integrations"),
        (name = "webhooks", description = "Outgoing webhooks, signed per Standard Webhooks"),
        (name = "notifications", description = "The signed-in user's in-app notifications"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Request bodies whose fields are all optional but of which the server needs at least one
/// (`#[schema(min_properties = 1)]` renders as `maxProperties` in utoipa 5.5, so it is set here).
const AT_LEAST_ONE_FIELD: &[&str] = &["UpdateConnectionRequest"];

struct AtLeastOneField;

impl Modify for AtLeastOneField {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in AT_LEAST_ONE_FIELD {
            if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(o))) =
                components.schemas.get_mut(*name)
            {
                o.min_properties = Some(1);
            }
        }
    }
}

/// Internally tagged request enums with `deny_unknown_fields`: utoipa leaves their variants
/// open, the server refuses any other field, so each variant is closed here.
const CLOSED_VARIANTS: &[&str] = &["SendMessageRequest"];

struct ClosedVariants;

impl Modify for ClosedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AdditionalProperties, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED_VARIANTS {
            if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(*name) {
                for item in one_of.items.iter_mut() {
                    if let RefOr::T(Schema::Object(o)) = item {
                        o.additional_properties =
                            Some(Box::new(AdditionalProperties::FreeForm(false)));
                    }
                }
            }
        }
    }
}

/// Where a route sits in `crate::router`, which decides the layers a request to it goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// Under `/api/`: the API middleware (authentication, the overall rate limit, CSRF and
    /// impersonation checks) runs before the handler.
    Api,
    /// Meta's `/webhooks/…`: no API middleware; the handler owns its body and its refusals.
    MetaWebhook,
    /// Health checks and this document: no API middleware.
    Plain,
}

impl RouteKind {
    fn of(path: &str) -> Self {
        if path == "/api/v1/openapi.json" {
            RouteKind::Plain
        } else if path.starts_with("/api/") {
            RouteKind::Api
        } else if path.starts_with("/webhooks/") {
            RouteKind::MetaWebhook
        } else {
            RouteKind::Plain
        }
    }
}

/// Handlers that answer without awaiting anything, so the request timeout can never fire.
const NEVER_WAITS: &[&str] = &["/healthz", "/api/v1/openapi.json"];

/// One refusal the request path can produce, with the `code` of its error body.
struct Answer {
    status: u16,
    code: &'static str,
    why: &'static str,
}

const fn answer(status: u16, code: &'static str, why: &'static str) -> Answer {
    Answer { status, code, why }
}

/// The refusals that the layers and extractors in front of an operation can produce. Exact
/// rather than generous: a status is listed only where the path of the request can produce it
/// (e.g. a route without an `Auth` extractor never answers 401 for a bad credential, and the
/// overall rate limit only covers `/api/` routes).
fn request_path_answers(path: &str, method: &str, op: &Operation) -> Vec<Answer> {
    let kind = RouteKind::of(path);
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path_params = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query_params = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    // `security(("bearer" = []), ())` (an empty alternative) means the handler also serves
    // requests without a credential, so it does not answer 401 for a missing one.
    let requires_credential = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && !s.contains(&SecurityRequirement::default()));
    let mut out = Vec::new();
    if !NEVER_WAITS.contains(&path) {
        out.push(answer(
            408,
            "request_timeout",
            "the request took longer than `PALISADE_REQUEST_TIMEOUT_SECS` and was abandoned",
        ));
    }
    if kind == RouteKind::Plain {
        return out;
    }
    if has_path_params {
        out.push(answer(
            400,
            "invalid_path",
            "a path parameter is malformed (e.g. an id that is not a UUID)",
        ));
    }
    if kind == RouteKind::MetaWebhook {
        return out;
    }
    out.push(answer(
        429,
        "rate_limited",
        "over the per-minute request limit of the credential, or of the address when there is none; see `Retry-After`",
    ));
    if method != "get" {
        out.push(answer(
            403,
            "csrf_failed",
            "a cookie-authenticated request without the matching `X-CSRF-Token` header",
        ));
        out.push(answer(
            403,
            "impersonation_read_only",
            "a change under a read-only impersonation",
        ));
    }
    if requires_credential {
        out.push(answer(
            401,
            "unauthenticated",
            "no credential was sent; an expired one is `token_expired`, an invalid or revoked one `invalid_token` or `invalid_api_key`",
        ));
        out.push(answer(
            403,
            "tenant_suspended",
            "the credential's tenant is suspended",
        ));
    }
    if has_path_params {
        out.push(answer(
            404,
            "not_found",
            "no such resource in your tenant (another tenant's is answered the same)",
        ));
    }
    if has_query_params {
        out.push(answer(
            400,
            "invalid_query",
            "a query parameter is malformed, unknown, or a required one is missing",
        ));
    }
    if let Some(body) = &op.request_body {
        out.push(answer(400, "malformed_json", "the body is not valid JSON"));
        out.push(answer(
            413,
            "body_too_large",
            "the body is larger than `PALISADE_MAX_BODY_BYTES`",
        ));
        out.push(answer(
            422,
            "invalid_body",
            "the JSON is not an object, or has a field of the wrong type, a missing field or an unknown field",
        ));
        if is_required(body) {
            out.push(answer(
                415,
                "unsupported_media_type",
                "the body is not sent as `Content-Type: application/json`",
            ));
        }
    }
    out
}

/// A required body goes through `ApiJson`, which insists on the JSON content type; an optional
/// one (`request_body(content = Option<…>)`, read with `optional_json`) is parsed whatever its
/// content type says.
fn is_required(body: &RequestBody) -> bool {
    matches!(body.required, Some(Required::True))
}

/// Adds [`request_path_answers`] to every operation, documents every error with the error
/// body, and every 429 and every 503 rendered as an error with its `Retry-After` header.
struct RequestPathAnswers;

impl Modify for RequestPathAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ];
            for (method, op) in operations {
                if let Some(op) = op.as_mut() {
                    let answers = request_path_answers(path, method, op);
                    document(op, &answers);
                }
            }
        }
    }
}

fn document(op: &mut Operation, answers: &[Answer]) {
    let mut by_status: BTreeMap<u16, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        by_status.entry(a.status).or_default().push(a);
    }
    for (status, list) in by_status {
        let entry = op
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new("")));
        let RefOr::T(response) = entry else { continue };
        for a in list {
            if response.description.contains(a.code) {
                continue;
            }
            let sentence = format!("`{}`: {}.", a.code, a.why);
            if response.description.is_empty() {
                response.description = sentence;
            } else {
                let sep = if response.description.ends_with('.') {
                    " "
                } else {
                    ". "
                };
                response.description = format!("{}{sep}{sentence}", response.description);
            }
        }
    }
    for (status, entry) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = entry else { continue };
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && response.content.is_empty() {
            response.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
        }
        let error_body = response.content.get("application/json").is_some_and(
            |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody")),
        );
        // `ApiError` sets `Retry-After` on every 429 and every 503 it renders.
        if (status == "429" || status == "503") && error_body {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after);
        }
    }
}

fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// What a string field accepts when it accepts a fixed set: types for the document only (fields
/// keep their `String`s and the core keeps deciding), referenced from request types with
/// `#[schema(value_type = …)]` / `#[param(value_type = …)]`. Tests in
/// `crates/palisade/tests/it/openapi.rs` check each set against what the server accepts.
#[allow(dead_code)]
pub mod schemas {
    use serde::Serialize;
    use utoipa::ToSchema;

    /// An export's format.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum ExportFormat {
        Csv,
        Jsonl,
    }

    /// A conversation's status.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum ConversationStatus {
        Open,
        Pending,
        Resolved,
    }

    /// The statuses a webhook can be set to (`pending_approval` only changes through approval).
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum WebhookStatusChange {
        Active,
        Disabled,
    }

    /// The roles a tenant's user can have.
    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum TenantRole {
        Admin,
        Agent,
    }

    /// A webhook's signature algorithm (`hmac-sha256` is the same as `hmac_sha256`).
    #[derive(Serialize, ToSchema)]
    pub enum SignatureAlgorithmName {
        #[serde(rename = "hmac_sha256")]
        HmacSha256,
        #[serde(rename = "hmac-sha256")]
        HmacSha256Dashed,
        #[serde(rename = "ed25519")]
        Ed25519,
    }

    /// An API key scope, or a group of them (`read_only`, `full_access`).
    #[derive(Serialize, ToSchema)]
    pub enum ScopeName {
        #[serde(rename = "conversations:read")]
        ConversationsRead,
        #[serde(rename = "conversations:write")]
        ConversationsWrite,
        #[serde(rename = "conversations:delete")]
        ConversationsDelete,
        #[serde(rename = "conversations:export")]
        ConversationsExport,
        #[serde(rename = "contacts:read")]
        ContactsRead,
        #[serde(rename = "contacts:write")]
        ContactsWrite,
        #[serde(rename = "contacts:delete")]
        ContactsDelete,
        #[serde(rename = "contacts:export")]
        ContactsExport,
        #[serde(rename = "campaigns:read")]
        CampaignsRead,
        #[serde(rename = "campaigns:write")]
        CampaignsWrite,
        #[serde(rename = "campaigns:delete")]
        CampaignsDelete,
        #[serde(rename = "templates:read")]
        TemplatesRead,
        #[serde(rename = "templates:write")]
        TemplatesWrite,
        #[serde(rename = "templates:delete")]
        TemplatesDelete,
        #[serde(rename = "webhooks:read")]
        WebhooksRead,
        #[serde(rename = "webhooks:write")]
        WebhooksWrite,
        #[serde(rename = "analytics:read")]
        AnalyticsRead,
        #[serde(rename = "read_only")]
        ReadOnly,
        #[serde(rename = "full_access")]
        FullAccess,
    }

    /// An event type a webhook subscribes to, a family (`contact.*`) or everything (`*`).
    #[derive(Serialize, ToSchema)]
    pub enum EventSubscription {
        #[serde(rename = "*")]
        All,
        #[serde(rename = "user.*")]
        User,
        #[serde(rename = "user.created")]
        UserCreated,
        #[serde(rename = "user.updated")]
        UserUpdated,
        #[serde(rename = "user.deleted")]
        UserDeleted,
        #[serde(rename = "api_key.*")]
        ApiKey,
        #[serde(rename = "api_key.created")]
        ApiKeyCreated,
        #[serde(rename = "api_key.revoked")]
        ApiKeyRevoked,
        #[serde(rename = "contact.*")]
        Contact,
        #[serde(rename = "contact.created")]
        ContactCreated,
        #[serde(rename = "contact.updated")]
        ContactUpdated,
        #[serde(rename = "contact.deleted")]
        ContactDeleted,
        #[serde(rename = "webhook.*")]
        Webhook,
        #[serde(rename = "webhook.test")]
        WebhookTest,
    }

    fn text(
        min: usize,
        max: usize,
        pattern: &str,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(min))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .into()
    }

    /// A contact tag: 1–50 letters, digits, spaces or `- _ . : /`, not only spaces (the server
    /// also accepts non-ASCII letters and digits).
    pub struct Tag;

    impl utoipa::PartialSchema for Tag {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            text(
                1,
                50,
                r"^[A-Za-z0-9 _.:/-]*[A-Za-z0-9_.:/-][A-Za-z0-9 _.:/-]*$",
            )
        }
    }
    impl ToSchema for Tag {}

    /// A conversation label: 1–50 characters, no control characters, not blank.
    pub struct Label;

    impl utoipa::PartialSchema for Label {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            text(
                1,
                50,
                r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
            )
        }
    }
    impl ToSchema for Label {}

    /// A host name of the webhook allowlist: letters, digits, `.`, `-` and `:`, at most 253.
    pub struct AllowedDomain;

    impl utoipa::PartialSchema for AllowedDomain {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            text(1, 253, r"^[A-Za-z0-9:-][A-Za-z0-9.:-]*$")
        }
    }
    impl ToSchema for AllowedDomain {}

    /// A contact's custom attributes: a flat object of at most 50 keys (1–64 characters, no
    /// control characters) whose values are strings, numbers, booleans or null; at most 8 KiB
    /// as JSON (not expressible here).
    pub struct CustomAttributes;

    impl utoipa::PartialSchema for CustomAttributes {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
            let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
                Type::Null,
            ]));
            let key = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(r"^[^\x00-\x1f\x7f-\x9f]*$"));
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .max_properties(Some(50))
                .property_names(Some(key))
                .additional_properties(Some(scalar))
                .into()
        }
    }
    impl ToSchema for CustomAttributes {}

    /// A media object: exactly one of `id` (Meta's media id) or `link` (an http(s) URL), and
    /// the `extra` fields the message type allows (`caption`, `filename`), nothing else.
    fn media(extra: &[&str]) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let with = |key: &str, schema: ObjectBuilder| {
            let mut o = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(key, schema)
                .required(key)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            for e in extra {
                let (min, max) = if *e == "filename" {
                    (1, 240)
                } else {
                    (0, 1024)
                };
                o = o.property(
                    *e,
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length((min > 0).then_some(min))
                        .max_length(Some(max)),
                );
            }
            o
        };
        let id = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9A-Za-z_.-]{1,128}$"));
        let link = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(2048))
            .pattern(Some("^https?://[!-~]*$"));
        OneOfBuilder::new()
            .item(with("id", id))
            .item(with("link", link))
            .into()
    }

    /// `{id | link}` (audio, sticker).
    pub struct Media;
    impl utoipa::PartialSchema for Media {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            media(&[])
        }
    }
    impl ToSchema for Media {}

    /// `{id | link, caption?}` (image, video).
    pub struct CaptionedMedia;
    impl utoipa::PartialSchema for CaptionedMedia {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            media(&["caption"])
        }
    }
    impl ToSchema for CaptionedMedia {}

    /// `{id | link, caption?, filename?}` (document).
    pub struct DocumentMedia;
    impl utoipa::PartialSchema for DocumentMedia {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            media(&["caption", "filename"])
        }
    }
    impl ToSchema for DocumentMedia {}

    /// Meta's interactive object in outline: a known `type`, an `action` object, a body text of
    /// at most 4096 characters; the rest is Meta's to check.
    pub struct Interactive;
    impl utoipa::PartialSchema for Interactive {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            use utoipa::openapi::schema::{ObjectBuilder, Type};
            let kind = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([
                    "button",
                    "list",
                    "cta_url",
                    "product",
                    "product_list",
                    "flow",
                    "location_request_message",
                ]));
            let body = ObjectBuilder::new().schema_type(Type::Object).property(
                "text",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(4096)),
            );
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("type", kind)
                .required("type")
                .property("action", ObjectBuilder::new().schema_type(Type::Object))
                .required("action")
                .property("body", body)
                .into()
        }
    }
    impl ToSchema for Interactive {}

    /// A template's language: a code (`en_US`, at most 16 characters) or `{"code": "en_US", …}`.
    pub struct TemplateLanguage;
    impl utoipa::PartialSchema for TemplateLanguage {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
            let code = || {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[A-Za-z0-9_-]{1,16}$"))
            };
            OneOfBuilder::new()
                .item(code())
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .property("code", code())
                        .required("code"),
                )
                .into()
        }
    }
    impl ToSchema for TemplateLanguage {}
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(doc: &utoipa::openapi::OpenApi, path: &str, method: &str) -> Vec<String> {
        let item = doc.paths.paths.get(path).expect("documented path");
        let op = match method {
            "get" => item.get.as_ref(),
            "post" => item.post.as_ref(),
            "delete" => item.delete.as_ref(),
            _ => None,
        }
        .expect("documented operation");
        op.responses.responses.keys().cloned().collect()
    }

    /// Exact rather than generous: a route lists what its request path can answer, and no more.
    #[test]
    fn answers_follow_the_route_shape() {
        let doc = ApiDoc::openapi();
        // No middleware, no awaiting, no input: nothing can go wrong on the way.
        assert_eq!(statuses(&doc, "/healthz", "get"), ["200"]);
        assert_eq!(statuses(&doc, "/api/v1/openapi.json", "get"), ["200"]);
        // An anonymous API read without input: only the timeout and the overall rate limit.
        assert_eq!(
            statuses(&doc, "/api/v1/auth/password/generate", "get"),
            ["200", "408", "429"]
        );
        // A credential is optional on the websocket (it may come in the first message): no 401.
        assert!(!statuses(&doc, "/api/v1/ws", "get").contains(&"401".to_owned()));
        // Meta's routes: a malformed id, but neither 404 nor 403 from the API middleware.
        let meta = statuses(&doc, "/webhooks/whatsapp/{connection_id}", "post");
        assert!(meta.contains(&"400".to_owned()), "{meta:?}");
        assert!(!meta.contains(&"404".to_owned()) && !meta.contains(&"403".to_owned()));
        // A signed-in change of a resource by id.
        assert_eq!(
            statuses(&doc, "/api/v1/users/{id}", "delete"),
            ["204", "400", "401", "403", "404", "408", "409", "429"]
        );
        // An optional body (parsed whatever its content type): no 415.
        assert!(!statuses(&doc, "/api/v1/auth/refresh", "post").contains(&"415".to_owned()));
        assert!(statuses(&doc, "/api/v1/auth/login", "post").contains(&"415".to_owned()));
    }
}
