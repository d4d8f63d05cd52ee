//! The OpenAPI 3.1 document of every route, served at `/api/v1/openapi.json`.
//! A test checks that every route the router serves is in it.

use crate::routes;
use crate::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Multi-tenant WhatsApp CRM server. Errors are always `{\"error\":{\"code\",\"message\",\"fields\"?,\"request_id\"}}`; every response carries `X-Request-Id`."),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::auth::register_tenant,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::logout_all,
        routes::auth::list_sessions,
        routes::auth::revoke_session,
        routes::auth::change_password,
        routes::auth::generate_password,
        routes::auth::accept_invite,
        routes::me::me,
        routes::tenant::get_tenant,
        routes::tenant::update_tenant,
        routes::users::list_users,
        routes::users::create_user,
        routes::users::get_user,
        routes::users::update_user,
        routes::users::delete_user,
        routes::users::restore_user,
        routes::users::transfer_ownership,
        routes::users::unlock_user,
        routes::whatsapp::create_connection,
        routes::whatsapp::list_connections,
        routes::whatsapp::disconnect_connection,
        routes::whatsapp::update_connection,
        routes::whatsapp::delete_connection,
        routes::whatsapp::verify_webhook,
        routes::whatsapp::receive_webhook,
        routes::contacts::list_contacts,
        routes::contacts::create_contact,
        routes::contacts::export_contacts,
        routes::contacts::get_contact,
        routes::contacts::update_contact,
        routes::contacts::delete_contact,
        routes::messaging::list_conversations,
        routes::messaging::get_conversation,
        routes::messaging::list_messages,
        routes::messaging::send_message,
        routes::messaging::update_conversation,
        routes::messaging::add_note,
        routes::media::download,
        routes::ws::ws,
        routes::admin::list_tenants,
        routes::admin::suspend_tenant,
        routes::admin::reactivate_tenant,
        routes::admin::impersonate,
        routes::api_keys::create_key,
        routes::api_keys::list_keys,
        routes::api_keys::get_key,
        routes::api_keys::update_key,
        routes::api_keys::revoke_key,
        routes::api_keys::delete_key,
        routes::webhooks::create_webhook,
        routes::webhooks::list_webhooks,
        routes::webhooks::get_webhook,
        routes::webhooks::update_webhook,
        routes::webhooks::delete_webhook,
        routes::webhooks::approve_webhook,
        routes::webhooks::rotate_secret,
        routes::webhooks::test_webhook,
        routes::webhooks::list_deliveries,
        routes::webhooks::retry_delivery,
        routes::webhooks::get_allowed_domains,
        routes::webhooks::put_allowed_domains,
        routes::notifications::list_notifications,
        routes::notifications::mark_read,
        routes::audit::search,
        routes::audit::export,
        openapi_json,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens, sessions, passwords"),
        (name = "me", description = "The signed-in user"),
        (name = "tenant", description = "The signed-in user's tenant"),
        (name = "users", description = "Team management"),
        (name = "whatsapp", description = "WhatsApp Business connections and Meta's webhooks"),
        (name = "contacts", description = "The people a tenant talks to on WhatsApp, and their marketing consent"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "realtime", description = "The websocket of live inbox events (docs/realtime.md)"),
        (name = "admin", description = "Platform administration (super admins)"),
        (name = "api-keys", description = "Scoped API keys for integrations"),
        (name = "webhooks", description = "Outgoing webhooks, signed per Standard Webhooks"),
        (name = "notifications", description = "The signed-in user's in-app notifications"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
