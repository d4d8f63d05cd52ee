//! What a string field accepts when it accepts a fixed set: types for the document only (fields
//! keep their `String`s and the core keeps deciding), referenced from request types with
//! `#[schema(value_type = …)]` / `#[param(value_type = …)]`. Tests in
//! `crates/palisade/tests/it/openapi.rs` check each set against what the server accepts.

// The enums are never built: they exist for their `ToSchema`.
#![allow(dead_code)]

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
    #[serde(rename = "deal.*")]
    Deal,
    #[serde(rename = "deal.created")]
    DealCreated,
    #[serde(rename = "deal.updated")]
    DealUpdated,
    #[serde(rename = "deal.stage_changed")]
    DealStageChanged,
    #[serde(rename = "deal.won")]
    DealWon,
    #[serde(rename = "deal.lost")]
    DealLost,
    #[serde(rename = "deal.deleted")]
    DealDeleted,
    #[serde(rename = "ticket.*")]
    Ticket,
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    #[serde(rename = "ticket.comment_added")]
    TicketCommentAdded,
    #[serde(rename = "template.*")]
    Template,
    #[serde(rename = "template.created")]
    TemplateCreated,
    #[serde(rename = "template.updated")]
    TemplateUpdated,
    #[serde(rename = "template.deleted")]
    TemplateDeleted,
    #[serde(rename = "order.*")]
    Order,
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.updated")]
    OrderUpdated,
    #[serde(rename = "campaign.*")]
    Campaign,
    #[serde(rename = "campaign.created")]
    CampaignCreated,
    #[serde(rename = "campaign.updated")]
    CampaignUpdated,
    #[serde(rename = "campaign.started")]
    CampaignStarted,
    #[serde(rename = "campaign.paused")]
    CampaignPaused,
    #[serde(rename = "campaign.resumed")]
    CampaignResumed,
    #[serde(rename = "campaign.cancelled")]
    CampaignCancelled,
    #[serde(rename = "campaign.completed")]
    CampaignCompleted,
    #[serde(rename = "campaign.deleted")]
    CampaignDeleted,
    #[serde(rename = "webhook.*")]
    Webhook,
    #[serde(rename = "webhook.test")]
    WebhookTest,
    #[serde(rename = "security.*")]
    Security,
    #[serde(rename = "security.alert")]
    SecurityAlert,
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

/// A media object: exactly one of `id` (Meta's media id), `link` (an http(s) URL) or
/// `attachment_id` (a file uploaded to Palisade, sent by the sender through Meta's media
/// upload), and the `extra` fields the message type allows (`caption`, `filename`), nothing else.
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
    let attachment = ObjectBuilder::new().schema_type(Type::String).format(Some(
        utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
    ));
    OneOfBuilder::new()
        .item(with("id", id))
        .item(with("link", link))
        .item(with("attachment_id", attachment))
        .into()
}

/// `{id | link | attachment_id}` (audio, sticker).
pub struct Media;
impl utoipa::PartialSchema for Media {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        media(&[])
    }
}
impl ToSchema for Media {}

/// `{id | link | attachment_id, caption?}` (image, video).
pub struct CaptionedMedia;
impl utoipa::PartialSchema for CaptionedMedia {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        media(&["caption"])
    }
}
impl ToSchema for CaptionedMedia {}

/// `{id | link | attachment_id, caption?, filename?}` (document).
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

#[cfg(test)]
mod event_subscription_tests {
    /// The documented list of subscribable names keeps up with the events there are.
    #[test]
    fn every_event_type_is_a_documented_subscription() {
        let schema =
            serde_json::to_value(<super::EventSubscription as utoipa::PartialSchema>::schema())
                .unwrap()
                .to_string();
        for e in palisade_domain::EventType::ALL {
            let family = format!("\"{}.*\"", e.as_str().split('.').next().unwrap());
            assert!(schema.contains(&format!("\"{}\"", e.as_str())), "{e}");
            assert!(schema.contains(&family), "{family}");
        }
    }
}
