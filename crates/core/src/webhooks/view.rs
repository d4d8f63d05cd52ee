//! The one shape a webhook endpoint and a delivery leave the server in (the REST answers).
//! Separate so that the web layer never sees the stored records, which carry the sealed
//! signing keys: what a view does not name cannot leak.

use palisade_domain::rfc3339;
use palisade_store::webhooks::{Delivery, Webhook};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

// A webhook endpoint as the API shows it, never with its secret. (A plain comment: a doc
// comment here would become the schema's description, which the served document has never had.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = WebhookResponse)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    /// `pending_approval`, `active` or `disabled`.
    pub status: String,
    /// `hmac_sha256` (Standard Webhooks `v1`) or `ed25519` (`v1a`).
    pub signature_algorithm: String,
    /// For `ed25519` webhooks: the `whpk_…` public key that verifies the `v1a` signatures
    /// (base64 of the 32-byte key). `null` for HMAC webhooks.
    pub public_key: Option<String>,
    pub created_by: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub approved_by: Option<Uuid>,
    #[schema(format = DateTime)]
    pub approved_at: Option<String>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_failure_at: Option<String>,
    /// While set, deliveries are signed with the previous secret too.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        WebhookView {
            id: w.id.as_uuid(),
            url: w.url.clone(),
            description: w.description.clone(),
            events: w.events.clone(),
            status: w.status.as_str().into(),
            signature_algorithm: w.signature_algorithm.clone(),
            public_key: w.public_key.clone(),
            created_by: w.created_by.as_uuid(),
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
            approved_by: w.approved_by.map(|u| u.as_uuid()),
            approved_at: w.approved_at.map(rfc3339),
            disabled_reason: w.disabled_reason.clone(),
            consecutive_failures: w.consecutive_failures,
            last_success_at: w.last_success_at.map(rfc3339),
            last_failure_at: w.last_failure_at.map(rfc3339),
            previous_secret_expires_at: w.previous_secret_expires_at.map(rfc3339),
        }
    }
}

// One delivery of one event to one endpoint, with its last attempt. (Plain comment: see above.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = DeliveryResponse)]
pub struct DeliveryView {
    /// Also the `webhook-id` header: stable across retries.
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    pub payload: serde_json::Value,
    /// `pending`, `failed` (retry scheduled), `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    /// The first KiB of the last response body.
    pub last_response: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id.as_uuid(),
            webhook_id: d.webhook_id.as_uuid(),
            event_type: d.event_type.clone(),
            payload: d.payload.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            // Only a delivery that waits has a next attempt (a finished one keeps a stale time).
            next_attempt_at: d.status.is_waiting().then(|| rfc3339(d.next_attempt_at)),
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            last_latency_ms: d.last_latency_ms,
            last_response: d.last_response.clone(),
            created_at: rfc3339(d.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{DeliveryId, TenantId, WebhookId};
    use palisade_store::webhooks::DeliveryStatus;
    use time::macros::datetime;

    fn delivery(status: DeliveryStatus) -> Delivery {
        let at = datetime!(2026-01-02 03:04:05 UTC);
        Delivery {
            id: DeliveryId::new(),
            tenant_id: TenantId::new(),
            webhook_id: WebhookId::new(),
            event_type: "webhook.test".into(),
            payload: serde_json::json!({ "type": "webhook.test" }),
            status,
            attempts: 1,
            next_attempt_at: at,
            last_attempt_at: Some(at),
            last_status: Some(500),
            last_error: Some("HTTP 500".into()),
            last_latency_ms: Some(12),
            last_response: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn only_a_waiting_delivery_shows_its_next_attempt() {
        for (status, shown) in [
            (DeliveryStatus::Pending, true),
            (DeliveryStatus::Failed, true),
            (DeliveryStatus::Delivered, false),
            (DeliveryStatus::Dead, false),
        ] {
            let v = DeliveryView::from(&delivery(status));
            assert_eq!(v.status, status.as_str());
            assert_eq!(v.next_attempt_at.is_some(), shown, "{status:?}");
        }
    }

    #[test]
    fn the_view_names_ids_as_uuids_and_keeps_the_payload() {
        let d = delivery(DeliveryStatus::Pending);
        let v = serde_json::to_value(DeliveryView::from(&d)).unwrap();
        assert_eq!(v["id"], serde_json::json!(d.id.as_uuid()));
        assert_eq!(v["webhook_id"], serde_json::json!(d.webhook_id.as_uuid()));
        assert_eq!(v["payload"], d.payload);
        assert_eq!(v["next_attempt_at"], "2026-01-02T03:04:05Z");
    }
}
