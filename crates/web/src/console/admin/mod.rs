//! Tenant administration pages: `/settings/users`, `/settings/api-keys`, `/settings/tenant`,
//! `/audit` and `/notifications`.
//!
//! Every page reads through the core use case its JSON route calls, so an agent gets the API's
//! `403`, an impersonation the API's `impersonation_forbidden` (users and API keys stay with the
//! tenant's own admins), and another tenant's records are never listed. Changes are `data-api`
//! forms against the JSON API (docs/console.md).

mod api_keys;
mod audit;
mod notifications;
mod tenant;
mod users;

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(api_keys::router())
        .merge(tenant::router())
        .merge(audit::router())
        .merge(notifications::router())
}
