//! The shapes integrations and their orders leave the server in.

use palisade_domain::integration::{Integration, Order, Rule};
use palisade_domain::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A store integration. Its secret is never shown again after creation (or rotation).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = IntegrationResponse)]
pub struct IntegrationView {
    pub id: Uuid,
    /// `woocommerce`.
    pub kind: String,
    pub name: String,
    /// The URL to paste into the shop's webhook settings (WooCommerce: Settings → Advanced →
    /// Webhooks → Delivery URL), with topics `Order created` and `Order updated`.
    pub callback_url: String,
    /// The WhatsApp connection the rules send from; `null`: the tenant's only active one.
    pub connection_id: Option<Uuid>,
    /// `[{on: "order.created"|"order.status_changed", status?, template: {name, language},
    /// parameters: [{type: "literal", value} | {type: "contact_field", field, fallback?} |
    /// {type: "order_field", field: "number"|"status"|"total"|"currency"}]}]`.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl IntegrationView {
    pub fn new(i: &Integration, public_url: &str) -> Self {
        IntegrationView {
            id: i.id.as_uuid(),
            kind: i.kind.as_str().to_owned(),
            name: i.name.as_str().to_owned(),
            callback_url: format!(
                "{}/webhooks/integrations/{}",
                public_url.trim_end_matches('/'),
                i.id
            ),
            connection_id: i.connection_id.map(|c| c.as_uuid()),
            rules: i.rules.iter().map(Rule::to_json).collect(),
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// An integration with its secret, answered once: on creation and on rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = IntegrationWithSecretResponse)]
pub struct IntegrationWithSecretView {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// The webhook secret to paste into the shop (WooCommerce: the webhook's Secret). Shown
    /// only now.
    pub secret: String,
}

/// An order a shop sent, on its customer's contact.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = OrderResponse)]
pub struct OrderView {
    pub id: Uuid,
    pub integration_id: Uuid,
    /// The shop's order id.
    pub external_id: String,
    /// The order number the shop shows its customer.
    pub number: String,
    /// The shop's status (`pending`, `processing`, `on-hold`, `completed`, `cancelled`,
    /// `refunded`, `failed`, or a plugin's own).
    pub status: String,
    /// A decimal amount as the shop wrote it (`29.35`).
    pub total: String,
    pub currency: String,
    pub contact_id: Option<Uuid>,
    /// `2 × T-shirt, 1 × Mug`.
    pub line_summary: String,
    /// Whether a rule's template was `queued`, `skipped` (no phone, opted out) or `failed`
    /// (no connection, template refused, a parameter without value); `null`: no rule matched.
    pub notification: Option<String>,
    pub notification_error: Option<String>,
    /// The queued message (its status follows Meta's).
    pub message_id: Option<Uuid>,
    /// When the shop last modified the order (its `date_modified_gmt`), if it said; a delivery
    /// older than this is not applied.
    #[schema(format = DateTime)]
    pub shop_modified_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id.as_uuid(),
            integration_id: o.integration_id.as_uuid(),
            external_id: o.external_id.clone(),
            number: o.number.clone(),
            status: o.status.clone(),
            total: o.total.clone(),
            currency: o.currency.clone(),
            contact_id: o.contact_id.map(|c| c.as_uuid()),
            line_summary: o.line_summary.clone(),
            notification: o.notification.map(|n| n.as_str().to_owned()),
            notification_error: o.notification_error.clone(),
            message_id: o.message_id,
            shop_modified_at: o.shop_modified_at.map(rfc3339),
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}
