//! The operator's and the tenant admin's "plumbing" pages: webhooks (`/settings/webhooks`),
//! WhatsApp numbers (`/settings/whatsapp`), the platform's tenants (`/admin/tenants`) and
//! impersonation from the console (starting, the banner's "End", restoring the operator).

pub mod impersonation;
pub mod tenants;
pub mod webhooks;
pub mod whatsapp;

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(tenants::router())
        .merge(impersonation::router())
        .merge(webhooks::router())
        .merge(whatsapp::router())
}

/// A path id that is not a UUID is a page that does not exist (as the API's `404`).
pub(crate) fn parse_id(raw: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).ok()
}
