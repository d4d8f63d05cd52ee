//! Outgoing webhooks: endpoints a tenant's admins register, signed per Standard Webhooks, and
//! delivered from a durable queue with retries.
//!
//! # Threats and invariants
//!
//! - SSRF: every URL is parsed with [`safe_http::TargetUrl`] under the policy in force at
//!   creation and again at every delivery, and sent only through [`safe_http::send`] (resolve
//!   once, check every answer, pin, no redirects). The permissive development policy comes only
//!   from `PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS`, which production refuses.
//! - A URL whose host is neither in the platform allowlist nor in the tenant's is created
//!   `pending_approval`; nothing is queued for it until an admin approves it (audited).
//! - An endpoint signs with HMAC-SHA256 (`v1`, default) or Ed25519 (`v1a`), chosen at creation.
//!   HMAC secrets are 32 random bytes (`whsec_` + base64), shown once; Ed25519 private keys are
//!   32-byte seeds (`whsk_` + base64), never shown, and the consumer gets the public key
//!   (`whpk_` + base64), shown at creation and on every read. Both are stored encrypted with
//!   `webhook:<tenant>:<id>` as associated data. Rotation keeps the previous key signing for an
//!   overlap (24 hours by default, at most 7 days, 0 drops it at once).
//! - Events are queued in the transaction of the change that causes them, so a rolled-back
//!   change sends nothing and a committed one is never lost; the queue survives restarts.
//! - Delivery: `webhook-id` is the delivery id (stable across retries), `webhook-timestamp` the
//!   attempt's Unix time, `webhook-signature` `v1,<base64 HMAC-SHA256(secret, id.ts.body)>` or
//!   `v1a,<base64 Ed25519 signature of id.ts.body>` (two entries during a rotation overlap).
//!   Retries back off exponentially with jitter for ~40 h, honour `Retry-After`, and stop on
//!   `410 Gone`, which disables the endpoint. Each endpoint gets at most
//!   `PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE` attempts a minute (60 by default). An endpoint
//!   failing 50 times in a row, or for 24 hours, is disabled with an audit record and a
//!   notification to every admin of the tenant, in the same transaction.
//! - A webhook created (or moved by a URL change) to `pending_approval` notifies the tenant's
//!   other admins in the transaction that creates it.
//!
//! # Where things are
//!
//! - `signing.rs`: secrets and key pairs, and the `webhook-signature` header.
//! - `events.rs`: who may subscribe to what (the catalogue itself is
//!   [`palisade_domain::EventType`]), and queueing events in the transaction of their cause.
//! - `targets.rs`: where a webhook may point (URL policy, allow-lists of domains).
//! - `endpoints.rs`: the admin use cases (create, change, approve, rotate, test, deliveries).
//! - `delivery.rs`: the worker that sends queued deliveries and records their outcomes.
//! - `view.rs`: [`WebhookView`] and [`DeliveryView`], the shapes the REST answers use.

mod delivery;
mod endpoints;
mod events;
mod signing;
mod targets;
mod view;

pub use delivery::{
    deliver_due, spawn_worker, DISABLE_AFTER_FAILING_FOR, DISABLE_AFTER_FAILURES,
    MAX_PARALLEL_ENDPOINTS, RESPONSE_LOG_BYTES, RETRY_SCHEDULE_SECS,
};
pub use endpoints::{
    approve, create, delete, get, list, list_deliveries, retry_delivery, rotate_secret, send_test,
    update, NewWebhook, WebhookChanges, MAX_ROTATION_OVERLAP, ROTATION_OVERLAP,
};
pub(crate) use events::subscribers;
pub use events::{enqueue, event_payload, subscription_matches};
pub use signing::{
    generate_ed25519, generate_secret, secret_bytes, sign, signature_header, SignatureAlgorithm,
    SigningKey, PRIVATE_KEY_PREFIX, PUBLIC_KEY_PREFIX, SECRET_PREFIX,
};
pub use targets::{allowed_domains, parse_url, policy, set_allowed_domains};
pub use view::{DeliveryView, WebhookView};
