//! Who may receive which events, and how they are queued: a subscription pattern
//! (`user.created`, `user.*`, `*`) is matched against the catalogue ([`EventType::ALL`]),
//! checked against the subscriber's permissions ([`EventType::required_permission`]), and each event is inserted as a delivery row in the transaction of
//! the change that caused it. Separate because every use case that emits events calls in here,
//! while the rest of the module is about endpoints and sending.

use crate::auth::Principal;
use crate::error::code;
use crate::{AppError, AppResult};
use palisade_domain::rfc3339;
use palisade_domain::{DeliveryId, EventType, FieldError, TenantId, WebhookId};
use palisade_store::webhooks::{self as store, Webhook};
use palisade_store::{Scope, Tx};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Whether a subscription (`user.created`, `user.*`, `*`) covers `event`.
pub fn subscription_matches(subscription: &str, event: &str) -> bool {
    if subscription == "*" || subscription == event {
        return true;
    }
    match subscription.strip_suffix(".*") {
        Some(prefix) => event
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => false,
    }
}

/// A webhook carries the data of its events to whoever holds its URL and secret, so whoever
/// subscribes it (or redirects it, rotates its secret, reads or replays its deliveries) must be
/// allowed to read that data: `contact.*` needs `contacts.read` (a key: `contacts:read`),
/// `conversation.*` / `message.*` `conversations.read`, and `user.*` / `api_key.*` (hence `*`)
/// are never for API keys (`403 api_key_not_allowed`: no scope grants them). Admins may
/// subscribe to everything.
pub(super) fn require_event_access(p: &Principal, subscriptions: &[String]) -> AppResult<()> {
    let mut missing_scope = None;
    for event in EventType::ALL.into_iter().filter(|t| {
        subscriptions
            .iter()
            .any(|sub| subscription_matches(sub, t.as_str()))
    }) {
        let Some(permission) = event.required_permission() else {
            continue;
        };
        match p.require(permission) {
            Ok(()) => {}
            Err(AppError::Forbidden {
                code: refusal,
                message,
            }) => {
                let e = AppError::Forbidden {
                    code: refusal,
                    message: format!("{message} (to receive {event} events)"),
                };
                // No scope can fix a refusal outright; say that first.
                if refusal != code::INSUFFICIENT_SCOPE {
                    return Err(e);
                }
                missing_scope.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    missing_scope.map_or(Ok(()), Err)
}

pub(super) fn parse_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    if events.is_empty() {
        return Err(FieldError::new(
            "events",
            "must name at least one event type, a prefix like user.*, or *",
        ));
    }
    let unknown: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| {
            !EventType::ALL
                .iter()
                .any(|t| subscription_matches(e, t.as_str()))
        })
        .collect();
    if !unknown.is_empty() {
        return Err(FieldError::new(
            "events",
            format!(
                "unknown event type(s): {}; known: {}",
                unknown.join(", "),
                EventType::ALL.map(EventType::as_str).join(", ")
            ),
        ));
    }
    let mut out = events.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The JSON body of an event, as delivered: `{type, timestamp, data}`.
pub fn event_payload(event: EventType, data: Value, now: OffsetDateTime) -> Value {
    json!({ "type": event.as_str(), "timestamp": rfc3339(now), "data": data })
}

/// Queues `event` once with each of `data` (in order) for every active endpoint of `tenant`
/// subscribed to it, in the caller's transaction (so it commits or rolls back with the change).
/// Returns how many deliveries were queued. Use cases go through
/// [`UnitOfWork::emit`](crate::UnitOfWork::emit) / [`emit_all`](crate::UnitOfWork::emit_all).
pub async fn enqueue<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    event: EventType,
    data: Vec<Value>,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let hooks = subscribers(tx, tenant, event).await?;
    enqueue_to(tx, tenant, &hooks, event, data, now).await
}

/// The tenant's active endpoints that subscribe to `event`.
pub async fn subscribers<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    event: EventType,
) -> AppResult<Vec<Webhook>> {
    let mut hooks = store::list_active(tx, tenant).await?;
    hooks.retain(|w| {
        w.events
            .iter()
            .any(|e| subscription_matches(e, event.as_str()))
    });
    Ok(hooks)
}

/// Queues one delivery of each event (`data`, in order) to each of `hooks` (from
/// [`subscribers`]), in the caller's transaction. Returns the deliveries queued.
async fn enqueue_to<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    hooks: &[Webhook],
    event: EventType,
    data: Vec<Value>,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let mut n = 0;
    for data in data {
        let payload = event_payload(event, data, now);
        for w in hooks {
            queue_delivery(tx, tenant, w.id, event, &payload, now).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Queues one delivery of `payload` (from [`event_payload`]) to the endpoint `webhook`.
pub(super) async fn queue_delivery<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    webhook: WebhookId,
    event: EventType,
    payload: &Value,
    now: OffsetDateTime,
) -> AppResult<DeliveryId> {
    let id = DeliveryId::new();
    store::insert_delivery(tx, tenant, webhook, id, event.as_str(), payload, now).await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_exactly_by_prefix_or_all() {
        assert!(subscription_matches("user.created", "user.created"));
        assert!(subscription_matches("user.*", "user.deleted"));
        assert!(subscription_matches("*", "api_key.revoked"));
        assert!(!subscription_matches("user.*", "users.created"));
        assert!(!subscription_matches("user.created", "user.updated"));
        assert!(!subscription_matches("user", "user.created"));
    }
}
