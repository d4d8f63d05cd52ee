//! WooCommerce's order webhooks on `POST /webhooks/integrations/{id}`.
//!
//! Anyone can POST to a callback URL, so nothing about a request is trusted, parsed or written
//! before its `X-WC-Webhook-Signature` (base64 of the HMAC-SHA256 of the raw body, keyed with
//! the integration's secret) is checked, in constant time (`hmac`'s `verify_slice`):
//!
//! - WooCommerce's ping when a webhook is saved (form body `webhook_id=<n>`, no signature) is
//!   answered `200` at once, without a lookup or a write.
//! - An unknown integration, a missing signature and a wrong one get the same `401
//!   signature_invalid` (an outsider learns nothing about which ids exist). A refusal costs at
//!   most one primary-key read and writes nothing: no audit record, no row, only a debug trace;
//!   past `PALISADE_RATE_LIMIT_WEBHOOK_FAILURES_PER_MINUTE` refusals from one address (its /64
//!   for IPv6) it is `429`. A correctly signed delivery is never limited.
//! - A signed delivery of a suspended tenant is `403 tenant_suspended` (WooCommerce retries,
//!   then disables the webhook); nothing is written.
//!
//! A signed `order.created` or `order.updated` delivery is then recorded in one transaction:
//! its delivery id (`X-WC-Webhook-Delivery-ID`; a replay answers `200` and does nothing, also
//! when two copies arrive at once), the customer as a contact (found by the billing phone in
//! E.164, created with the billing name and email when new, a known contact's missing name or
//! email filled in; consent is never implied), and the order (by the shop's order id: created,
//! or updated with its status change detected; a delivery whose `date_modified_gmt` is older than
//! the stored order's is `Stale`: audited, nothing changed, no notification). The tenant's
//! webhooks get `order.created` or `order.updated`. When a rule matches (the first that does), its
//! template is queued to the customer through the messaging send path; a send that cannot be
//! queued is recorded on the order (`notification: failed` and why), never an error to the
//! shop. Other topics are answered `200` and ignored.

use super::manage::aad;
use super::view::OrderView;
use crate::audit::AuditEntryExt;
use crate::auth::RequestMeta;
use crate::error::code;
use crate::messaging::{self, Outgoing};
use crate::rate_limit::ClientKey;
use crate::{AppError, AppResult, Services, SystemActor, UnitOfWork};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_domain::integration::{
    parse_order_status, phone_from_billing, Integration, NotificationStatus, Order, OrderEvent,
    Rule,
};
use palisade_domain::{
    ConnectionStatus, Contact, ContactId, EmailAddress, EventType, IntegrationId, OrderId,
    PersonName,
};
use palisade_store::integrations as store;
use palisade_store::{SystemScope, TenantScope};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The largest body read (an order with a few hundred lines fits many times over).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest delivery id kept (WooCommerce's are short hashes or numbers).
const MAX_DELIVERY_ID: usize = 128;
const MAX_LINE_SUMMARY: usize = 500;

/// A delivery as the route received it.
pub struct Delivery<'a> {
    pub topic: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// What became of a delivery that was answered `200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// WooCommerce's unsigned ping when the webhook was saved.
    Ping,
    /// A signed delivery of a topic Palisade does not use.
    Ignored,
    /// A delivery id received before: nothing done.
    Replay,
    /// A delivery older than the stored order (by the shop's modification time): recorded as
    /// received and audited, the order left as it is, no notification.
    Stale { order_id: OrderId },
    Recorded {
        order_id: OrderId,
        contact_id: Option<ContactId>,
        notification: Option<NotificationStatus>,
    },
}

/// WooCommerce's ping: `webhook_id=<digits>`, nothing else.
fn is_ping(body: &[u8]) -> bool {
    body.len() <= 64
        && body
            .strip_prefix(b"webhook_id=")
            .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

/// `signature` is base64 of HMAC-SHA256(secret, body); compared in constant time.
pub fn signature_valid(secret: &[u8], signature: &str, body: &[u8]) -> bool {
    let Ok(sig) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The one answer to every refused delivery (after counting it against the address's budget).
async fn refuse(s: &Services, meta: &RequestMeta, id: IntegrationId, reason: &str) -> AppError {
    tracing::debug!(integration_id = %id, reason, "store webhook refused");
    if let Some(ip) = meta.ip {
        if let Err(wait) = s.limits.webhook_failures.check(&ClientKey::of(ip)).await {
            return AppError::rate_limited(
                "too many refused webhook deliveries from your address; correctly signed \
                 deliveries are still accepted",
                wait,
            );
        }
    }
    AppError::Unauthenticated {
        code: code::SIGNATURE_INVALID,
        message: "X-WC-Webhook-Signature is missing or is not this integration's signature of \
                  the body"
            .into(),
    }
}

/// Verifies and records one delivery; see the module documentation.
pub async fn receive(
    s: &Services,
    meta: &RequestMeta,
    id: IntegrationId,
    d: Delivery<'_>,
) -> AppResult<Outcome> {
    if d.signature.is_none() && is_ping(d.body) {
        return Ok(Outcome::Ping);
    }
    let mut tx = s
        .store
        .begin_read(SystemScope::new("integrations.webhook.receive"))
        .await?;
    let found = store::find_any(&mut tx, id).await?;
    drop(tx);
    let Some(integration) = found else {
        return Err(refuse(s, meta, id, "unknown integration").await);
    };
    let Some(signature) = d.signature else {
        return Err(refuse(s, meta, id, "signature missing").await);
    };
    let secret = s
        .keys
        .encryption
        .decrypt(
            &integration.secret_ciphertext,
            &aad(integration.tenant_id, integration.id),
        )
        .map_err(|e| anyhow::anyhow!("secret of integration {}: {e:?}", integration.id))?;
    if !signature_valid(&secret, signature, d.body) {
        return Err(refuse(s, meta, id, "signature invalid").await);
    }
    // Signed by the shop from here on.
    if crate::auth::tenant_snapshot(s, integration.tenant_id)
        .await?
        .suspended
    {
        return Err(crate::auth::tenant_suspended());
    }
    let topic = d.topic.unwrap_or_default().trim();
    if topic != "order.created" && topic != "order.updated" {
        return Ok(Outcome::Ignored);
    }
    let delivery_id = d
        .delivery_id
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_DELIVERY_ID && !v.chars().any(char::is_control))
        .ok_or_else(|| AppError::BadRequest {
            code: code::INVALID_BODY,
            message: format!(
                "X-WC-Webhook-Delivery-ID is required (1 to {MAX_DELIVERY_ID} characters)"
            ),
        })?;
    let order = parse_order(d.body)?;
    // The shop's signature over this body was verified above with the integration's secret:
    // the credential that binds the delivery to the integration's tenant.
    let scope = TenantScope::from_verified_credential(integration.tenant_id);
    record(s, scope, &integration, delivery_id, topic, order).await
}

// ---- the order as WooCommerce sends it (REST API v3 shape), read leniently ----

#[derive(Debug, Deserialize)]
struct WcOrder {
    id: Value,
    #[serde(default)]
    number: Option<Value>,
    status: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total: Option<Value>,
    #[serde(default)]
    billing: Option<WcBilling>,
    #[serde(default)]
    line_items: Vec<WcLine>,
    /// `2017-03-22T16:28:08`: UTC without an offset (WooCommerce's `_gmt` fields).
    #[serde(default)]
    date_modified_gmt: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct WcBilling {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WcLine {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    quantity: Option<Value>,
}

/// What a delivery says about an order and its customer, parsed.
struct IncomingOrder {
    external_id: String,
    number: String,
    status: String,
    total: String,
    currency: String,
    line_summary: String,
    phone: Option<palisade_domain::PhoneNumber>,
    name: Option<PersonName>,
    email: Option<EmailAddress>,
    shop_modified_at: Option<OffsetDateTime>,
}

fn bad_body(message: impl Into<String>) -> AppError {
    AppError::BadRequest {
        code: code::INVALID_BODY,
        message: message.into(),
    }
}

/// A scalar (string or number) as short printable text.
fn scalar(v: &Value, max: usize) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)).then_some(s)
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// WooCommerce's `date_modified_gmt` (`2017-03-22T16:28:08`, UTC without an offset), or an RFC
/// 3339 time; anything else is taken as absent (the order is then applied whatever its age).
fn shop_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    let s = v?.as_str()?.trim();
    let naive = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, naive)
        .map(time::PrimitiveDateTime::assume_utc)
        .or_else(|_| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
        .ok()
}

fn parse_order(body: &[u8]) -> AppResult<IncomingOrder> {
    let o: WcOrder = serde_json::from_slice(body)
        .map_err(|e| bad_body(format!("the body is not a WooCommerce order: {e}")))?;
    let external_id = scalar(&o.id, 64)
        .ok_or_else(|| bad_body("id must be the order's id (1 to 64 characters)"))?;
    let number = o
        .number
        .as_ref()
        .and_then(|n| scalar(n, 64))
        .unwrap_or_else(|| external_id.clone());
    let status = parse_order_status("status", &o.status).map_err(|e| bad_body(e.to_string()))?;
    let total = o
        .total
        .as_ref()
        .and_then(|t| scalar(t, 32))
        .filter(|t| {
            t.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        })
        .unwrap_or_else(|| "0".into());
    let currency = o
        .currency
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| (1..=10).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_default();
    let mut line_summary = o
        .line_items
        .iter()
        .filter_map(|l| {
            let name = clean(l.name.as_deref().unwrap_or_default());
            if name.is_empty() {
                return None;
            }
            let qty = l
                .quantity
                .as_ref()
                .and_then(|q| scalar(q, 12))
                .unwrap_or_else(|| "1".into());
            Some(format!("{qty} × {name}"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    if line_summary.chars().count() > MAX_LINE_SUMMARY {
        line_summary = line_summary.chars().take(MAX_LINE_SUMMARY - 1).collect();
        line_summary.push('…');
    }
    let billing = o.billing.unwrap_or_default();
    let phone = billing
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| phone_from_billing("billing.phone", p, billing.country.as_deref()).ok());
    let full_name = clean(&format!(
        "{} {}",
        billing.first_name.as_deref().unwrap_or_default(),
        billing.last_name.as_deref().unwrap_or_default()
    ));
    let name = (!full_name.is_empty())
        .then(|| PersonName::parse("billing.first_name", &full_name).ok())
        .flatten();
    let email = billing
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .and_then(|e| EmailAddress::parse("billing.email", e).ok());
    Ok(IncomingOrder {
        external_id,
        number,
        status,
        total,
        currency,
        line_summary,
        phone,
        name,
        email,
        shop_modified_at: shop_time(o.date_modified_gmt.as_ref()),
    })
}

/// Records a verified delivery (see the module documentation).
async fn record(
    s: &Services,
    scope: TenantScope,
    integration: &Integration,
    delivery_id: &str,
    topic: &str,
    incoming: IncomingOrder,
) -> AppResult<Outcome> {
    let mut uow = UnitOfWork::system(s, SystemActor::StoreIntegrations, scope).await?;
    let now = uow.now();
    if !store::record_delivery(uow.tx(), integration.id, delivery_id, topic, now).await? {
        return Ok(Outcome::Replay);
    }
    // The customer.
    let mut contact_created = false;
    let contact = match &incoming.phone {
        None => None,
        Some(phone) => {
            let mut new = Contact::new(integration.tenant_id, phone.clone(), now);
            new.name = incoming.name.clone();
            new.email = incoming.email.clone();
            let (mut c, created) =
                palisade_store::contacts::insert_or_find_by_phone(uow.tx(), &new).await?;
            contact_created = created;
            if !created {
                let mut changed = false;
                if c.name.is_none() && incoming.name.is_some() {
                    c.name = incoming.name.clone();
                    changed = true;
                }
                if c.email.is_none() && incoming.email.is_some() {
                    c.email = incoming.email.clone();
                    changed = true;
                }
                if changed {
                    c.updated_at = now;
                    palisade_store::contacts::update(uow.tx(), &c).await?;
                }
            }
            Some(c)
        }
    };
    // The order.
    let fresh = Order {
        id: OrderId::new(),
        tenant_id: integration.tenant_id,
        integration_id: integration.id,
        external_id: incoming.external_id.clone(),
        number: incoming.number,
        status: incoming.status,
        total: incoming.total,
        currency: incoming.currency,
        contact_id: contact.as_ref().map(|c| c.id),
        line_summary: incoming.line_summary,
        notification: None,
        notification_error: None,
        message_id: None,
        shop_modified_at: incoming.shop_modified_at,
        created_at: now,
        updated_at: now,
    };
    let (mut order, event) = if store::insert_order_if_absent(uow.tx(), &fresh).await? {
        (fresh, OrderEvent::Created)
    } else {
        let mut o = store::find_order_for_update(uow.tx(), integration.id, &incoming.external_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("order {} vanished", incoming.external_id))?;
        if o.is_newer_than(fresh.shop_modified_at) {
            uow.audit(
                uow.entry("integration.order_stale")
                    .target("order", o.id.as_uuid())
                    .metadata(json!({
                        "integration_id": integration.id,
                        "delivery_id": delivery_id,
                        "topic": topic,
                        "status": fresh.status,
                        "stored_status": o.status,
                    })),
            )
            .await?;
            uow.commit().await?;
            return Ok(Outcome::Stale { order_id: o.id });
        }
        let event = if o.status == fresh.status {
            OrderEvent::Unchanged
        } else {
            OrderEvent::StatusChanged {
                from: o.status.clone(),
            }
        };
        o.number = fresh.number;
        o.status = fresh.status;
        o.total = fresh.total;
        o.currency = fresh.currency;
        o.contact_id = fresh.contact_id.or(o.contact_id);
        o.line_summary = fresh.line_summary;
        o.shop_modified_at = fresh.shop_modified_at.or(o.shop_modified_at);
        o.updated_at = now;
        (o, event)
    };
    // The notification, when a rule says so.
    let rule = integration
        .rules
        .iter()
        .find(|r| r.matches(&event, &order.status));
    if let Some(rule) = rule {
        let (status, error, message) =
            notify(&mut uow, integration, rule, contact.as_ref(), &order).await?;
        order.notification = Some(status);
        order.notification_error = error;
        order.message_id = message;
    }
    store::update_order(uow.tx(), &order).await?;
    let from = match &event {
        OrderEvent::StatusChanged { from } => Some(from.clone()),
        _ => None,
    };
    uow.audit(
        uow.entry("integration.order_recorded")
            .target("order", order.id.as_uuid())
            .metadata(json!({
                "integration_id": integration.id,
                "delivery_id": delivery_id,
                "topic": topic,
                "event": match event {
                    OrderEvent::Created => "created",
                    OrderEvent::StatusChanged { .. } => "status_changed",
                    OrderEvent::Unchanged => "unchanged",
                },
                "status": order.status,
                "previous_status": from,
                "contact_id": order.contact_id,
                "contact_created": contact_created,
                "notification": order.notification.map(NotificationStatus::as_str),
                "message_id": order.message_id,
            })),
    )
    .await?;
    let event_type = match event {
        OrderEvent::Created => EventType::OrderCreated,
        OrderEvent::StatusChanged { .. } | OrderEvent::Unchanged => EventType::OrderUpdated,
    };
    uow.emit(event_type, &OrderView::from(&order)).await?;
    uow.commit().await?;
    Ok(Outcome::Recorded {
        order_id: order.id,
        contact_id: order.contact_id,
        notification: order.notification,
    })
}

/// Queues `rule`'s template to the order's customer in `uow`, or says why not.
async fn notify(
    uow: &mut UnitOfWork<'_>,
    integration: &Integration,
    rule: &Rule,
    contact: Option<&Contact>,
    order: &Order,
) -> AppResult<(NotificationStatus, Option<String>, Option<uuid::Uuid>)> {
    let skipped = |m: &str| Ok((NotificationStatus::Skipped, Some(m.to_owned()), None));
    let failed = |m: String| Ok((NotificationStatus::Failed, Some(m), None));
    let Some(contact) = contact else {
        return skipped("the order has no usable billing phone number");
    };
    if contact.consent.is_opted_out() {
        return skipped("the contact opted out of messages");
    }
    let values = match rule.parameter_values(contact, order) {
        Ok(v) => v,
        Err(m) => return failed(m),
    };
    let connection = match integration.connection_id {
        Some(id) => palisade_store::whatsapp_connections::find(uow.tx(), id)
            .await?
            .filter(|c| c.status == ConnectionStatus::Active),
        None => {
            let active: Vec<_> = palisade_store::whatsapp_connections::list(uow.tx())
                .await?
                .into_iter()
                .filter(|c| c.status == ConnectionStatus::Active)
                .collect();
            if active.len() == 1 {
                active.into_iter().next()
            } else {
                None
            }
        }
    };
    let Some(connection) = connection else {
        return failed(match integration.connection_id {
            Some(_) => "the integration's WhatsApp connection is gone or disconnected".into(),
            None => "no WhatsApp connection to send from: connect one number, or set the \
                     integration's connection_id"
                .into(),
        });
    };
    let now = uow.now();
    let conversation =
        palisade_store::conversations::open_for_outbound(uow.tx(), contact.id, connection.id, now)
            .await?;
    let components = (!values.is_empty()).then(|| {
        json!([{
            "type": "body",
            "parameters": values.iter().map(|v| json!({"type": "text", "text": v})).collect::<Vec<_>>(),
        }])
    });
    let out = Outgoing::Template {
        name: rule.template.name.clone(),
        language: Value::String(rule.template.language.clone()),
        components,
    };
    match messaging::queue_message(uow, conversation, out, None).await {
        Ok(m) => Ok((NotificationStatus::Queued, None, Some(m.id.as_uuid()))),
        // Refusals of the send path (the template, the connection): recorded on the order.
        Err(
            e @ (AppError::Validation { .. }
            | AppError::Unprocessable { .. }
            | AppError::Conflict { .. }
            | AppError::NotFound(_)
            | AppError::BadRequest { .. }),
        ) => failed(e.to_string()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woocommerce_signatures_verify() {
        // base64(HMAC-SHA256("secret", "{}")), as WooCommerce computes it.
        let mut mac = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(b"secret")
            .unwrap_or_else(|_| unreachable!());
        mac.update(b"{}");
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        assert!(signature_valid(b"secret", &sig, b"{}"));
        assert!(!signature_valid(b"secret", &sig, b"{ }"));
        assert!(!signature_valid(b"other", &sig, b"{}"));
        assert!(!signature_valid(b"secret", "not base64!", b"{}"));
        assert!(!signature_valid(b"secret", "", b"{}"));
    }

    #[test]
    fn only_the_form_ping_is_a_ping() {
        assert!(is_ping(b"webhook_id=12"));
        assert!(!is_ping(b"webhook_id="));
        assert!(!is_ping(b"webhook_id=12&x=1"));
        assert!(!is_ping(b"{\"id\":1}"));
    }
}
