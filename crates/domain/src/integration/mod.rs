//! Store integrations: an online shop (WooCommerce) that tells Palisade about its orders by
//! signed webhooks, and the rules that turn an order event into a WhatsApp template message.
//!
//! Everything the shop or an admin sends is parsed here once: an integration's name, its
//! rules (the trigger, an optional order status, the template and its parameters), and a
//! billing phone number written the way shoppers write them (national, with the billing
//! country) into E.164. The order itself is recorded as the shop sent it (`status` is the
//! shop's own word: WooCommerce plugins add statuses), bounded in length.

mod phone;
mod rules;

pub use phone::*;
pub use rules::*;

use crate::text::parse_display_text;
use crate::{Contact, ContactId, FieldError, IntegrationId, OrderId, PhoneNumber, TenantId};
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which shop software an integration speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    WooCommerce,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 1] = [IntegrationKind::WooCommerce];

    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::WooCommerce => "woocommerce",
        }
    }

    pub fn parse(s: &str) -> Option<IntegrationKind> {
        IntegrationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(IntegrationKind, "integration kind");

/// A shop connected to a tenant. The secret signs the shop's webhooks; it is kept encrypted
/// (`secret_ciphertext`, bound to the integration's tenant and id) and shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub kind: IntegrationKind,
    pub name: IntegrationName,
    pub secret_ciphertext: String,
    /// The WhatsApp connection the rules' templates are sent from; `None`: the tenant's only
    /// active connection, if it has exactly one.
    pub connection_id: Option<crate::ConnectionId>,
    pub rules: Vec<Rule>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// 1 to 100 characters of display text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IntegrationName(String);

impl IntegrationName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        parse_display_text(field, raw, 100).map(Self)
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What happened to an order that a rule can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RuleTrigger {
    /// The first time Palisade hears of the order (whichever topic brought it).
    #[serde(rename = "order.created")]
    OrderCreated,
    /// A later delivery of a known order with another status.
    #[serde(rename = "order.status_changed")]
    OrderStatusChanged,
}

impl RuleTrigger {
    pub const ALL: [RuleTrigger; 2] = [RuleTrigger::OrderCreated, RuleTrigger::OrderStatusChanged];

    pub const fn as_str(self) -> &'static str {
        match self {
            RuleTrigger::OrderCreated => "order.created",
            RuleTrigger::OrderStatusChanged => "order.status_changed",
        }
    }

    pub fn parse(s: &str) -> Option<RuleTrigger> {
        RuleTrigger::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(RuleTrigger, "rule trigger");

/// Whether a rule's template was queued for an order, and what went wrong if not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Queued for sending (the message's own status follows Meta's).
    Queued,
    /// Not sent: the contact opted out, or has no phone.
    Skipped,
    /// Could not be queued (no connection, template refused, parameter without value).
    Failed,
}

impl NotificationStatus {
    pub const ALL: [NotificationStatus; 3] = [
        NotificationStatus::Queued,
        NotificationStatus::Skipped,
        NotificationStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Queued => "queued",
            NotificationStatus::Skipped => "skipped",
            NotificationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationStatus> {
        NotificationStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

text_enum!(NotificationStatus, "notification status");

/// An order a shop told Palisade about, on its customer's contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// The shop's order id.
    pub external_id: String,
    /// The number the shop shows the customer (often the id).
    pub number: String,
    pub status: String,
    /// A decimal amount as the shop wrote it (`29.35`).
    pub total: String,
    pub currency: String,
    /// `None` when the order came without a usable phone number.
    pub contact_id: Option<ContactId>,
    /// `2 × T-shirt, 1 × Mug` (at most 500 characters).
    pub line_summary: String,
    pub notification: Option<NotificationStatus>,
    pub notification_error: Option<String>,
    pub message_id: Option<Uuid>,
    /// When the shop last modified the order (WooCommerce's `date_modified_gmt`), if it said.
    pub shop_modified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// Whether a delivery describing the order as of `shop_modified_at` is older than what is
    /// stored, so applying it would put an older state back. Equal times are not stale (the
    /// shop's clock has whole seconds: two changes within one second both apply, in arrival
    /// order), and a side without a time cannot be compared, so it applies.
    pub fn is_newer_than(&self, shop_modified_at: Option<OffsetDateTime>) -> bool {
        matches!((self.shop_modified_at, shop_modified_at), (Some(stored), Some(incoming)) if incoming < stored)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn phone(raw: &str, country: &str) -> String {
        phone_from_billing("phone", raw, Some(country))
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|e| format!("error: {}", e.message))
    }

    #[test]
    fn billing_phones_become_e164() {
        assert_eq!(phone("07700 900123", "GB"), "+447700900123");
        assert_eq!(phone("+44 7700 900123", "US"), "+447700900123");
        assert_eq!(phone("0044 7700 900123", "US"), "+447700900123");
        assert_eq!(phone("(555) 010-0199", "US"), "+15550100199");
        assert_eq!(phone("1-555-010-0199", "us"), "+15550100199");
        assert_eq!(phone("06 12 34 56 78", "FR"), "+33612345678");
        assert_eq!(phone("06 123 4567", "IT"), "+39061234567");
        assert_eq!(phone("(11) 91234-5678", "BR"), "+5511912345678");
        assert_eq!(phone("8 916 123-45-67", "RU"), "+79161234567");
        assert!(phone("07700 900123", "").starts_with("error"));
        assert!(phone("07700 900123", "ZZ").starts_with("error"));
        assert!(phone("call me", "GB").starts_with("error"));
        assert!(phone("123", "GB").starts_with("error"));
    }

    #[test]
    fn rules_parse_with_every_problem_named() {
        let ok = parse_rules(&json!([{
            "on": "order.status_changed", "status": "completed",
            "template": {"name": "order_done", "language": "en_US"},
            "parameters": [
                {"type": "contact_field", "field": "name", "fallback": "there"},
                {"type": "order_field", "field": "number"},
                {"type": "literal", "value": "Acme"},
                {"type": "contact_field", "field": "custom_attributes.tier"},
            ],
        }]))
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].parameters.len(), 4);
        assert_eq!(
            rules_from_stored(&Value::Array(ok.iter().map(Rule::to_json).collect())),
            ok
        );

        let errs = parse_rules(&json!([
            {"on": "order.shipped", "template": {"name": "Bad Name", "language": "english"},
             "parameters": [{"type": "literal"}, {"type": "contact_field", "field": "age"}]},
            {"on": "order.created", "status": "Done!", "template": {"name": "x", "language": "en"}, "extra": 1},
        ]))
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.message.clone()).collect();
        for want in [
            "rule 0: on must be",
            "rule 0: template.name",
            "rule 0: template.language",
            "rule 0: parameter 1: a literal needs a value",
            "rule 0: parameter 2: field must be",
            "rule 1: unknown field \"extra\"",
            "rule 1: status must be an order status",
        ] {
            assert!(
                text.iter().any(|t| t.starts_with(want)),
                "{want} not in {text:?}"
            );
        }
        assert!(parse_rules(&json!({})).is_err());
        assert!(parse_rules(&Value::Array(vec![json!({}); MAX_RULES + 1])).is_err());
    }

    #[test]
    fn rules_match_their_trigger_and_status() {
        let r = |on, status: Option<&str>| Rule {
            on,
            status: status.map(str::to_owned),
            template: TemplateRef {
                name: "t".into(),
                language: "en".into(),
            },
            parameters: Vec::new(),
        };
        let changed = OrderEvent::StatusChanged {
            from: "processing".into(),
        };
        assert!(r(RuleTrigger::OrderCreated, None).matches(&OrderEvent::Created, "pending"));
        assert!(!r(RuleTrigger::OrderCreated, None).matches(&changed, "completed"));
        assert!(
            r(RuleTrigger::OrderStatusChanged, Some("completed")).matches(&changed, "completed")
        );
        assert!(
            !r(RuleTrigger::OrderStatusChanged, Some("completed")).matches(&changed, "refunded")
        );
        assert!(!r(RuleTrigger::OrderStatusChanged, None).matches(&OrderEvent::Unchanged, "x"));
    }
}
