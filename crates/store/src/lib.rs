//! Data access for Palisade on SQLite and PostgreSQL, one code path for both.
//!
//! SQL is written once with `$n` placeholders (both databases accept them) and run through
//! [`Tx`], which dispatches to whichever pool is configured. Every transaction is opened for a
//! scope: a [`TenantScope`] binds the tenant into every statement (and, on PostgreSQL, into the
//! row-level-security setting `app.tenant_id`); a [`SystemScope`] names cross-tenant work.
//!
//! Repository modules (`users`, `sessions`, …) are plain async functions over a `Tx`, one module
//! per aggregate. Their row structs are private; they return the public records defined beside them.

#[cfg(test)]
mod citus_plan;
mod db;
mod error;
mod lease;
mod notify;
mod one_time_secrets;
pub mod outbox;
mod query;
mod scope;

pub mod alert_webhook_outbox;
pub mod analytics;
pub mod api_keys;
pub mod audit;
pub mod auth_changes;
pub mod backup;
pub mod campaigns;
pub mod contacts;
pub mod conversations;
pub mod deals;
pub mod email_codes;
pub mod integrations;
pub mod invites;
pub mod login_history;
pub mod login_throttle;
pub mod mail_outbox;
pub mod media;
pub mod messages;
pub mod notifications;
pub mod outbound_media;
pub mod passkeys;
pub mod password_history;
pub mod password_resets;
pub mod queues;
pub mod realtime;
pub mod refresh_tokens;
pub mod scheduled_runs;
pub mod security_alerts;
pub mod send_queue;
pub mod sessions;
pub mod templates;
pub mod tenants;
pub mod tickets;
pub mod two_factor;
pub mod users;
pub mod webhooks;
pub mod whatsapp_connections;
pub mod whatsapp_inbound;

pub use db::{
    redact_url, Backend, DatabaseSettings, Plans, PoolConnections, Store, Tx, PG_APP_ROLE,
};
pub use error::StoreError;
pub use notify::{Listener, NOTIFY_MAX_BYTES};
pub use query::{Arg, IntoArg, Query};
pub use scope::{Scope, SystemScope, TenantScope, UserScope};
/// JSON columns (re-exported so services can build records without depending on sqlx).
pub use sqlx::types::Json;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
