//! `/settings/users`: the tenant's team — invite, change role, unlock (offered on the users whose
//! sign-in is locked now: the view's `locked_until`), delete, restore, transfer ownership.
//!
//! The list includes deleted users, which needs the API's `users.manage` permission: an agent
//! (who may read the team through the API) gets the `403` page here, as on every admin page, and
//! an impersonation gets `impersonation_forbidden`.

use crate::console::page::{app_error, render, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::users::{self, UserView};
use palisade_domain::{Permission, Role};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/users", get(users_page))
}

/// The roles an admin can give (the tenant's roles, from the domain).
fn tenant_roles() -> Vec<&'static str> {
    Role::ALL
        .into_iter()
        .filter(|r| r.is_tenant_role())
        .map(Role::as_str)
        .collect()
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    /// The viewer's own id, so their own row offers no role change or deletion.
    me: String,
    /// The viewer owns the tenant (only the owner can transfer ownership).
    viewer_is_owner: bool,
    can_restore: bool,
}

async fn users_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let list = match users::list(s, p, None, true).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    let me = p.user_id.as_uuid();
    let users = match users::views(s, p, &list).await {
        Ok(v) => v,
        Err(e) => return app_error(e),
    };
    render(&UsersPage {
        chrome: Chrome::new(s, &viewer, "Users", Nav::Settings),
        viewer_is_owner: users.iter().any(|u| u.id == me && u.is_owner),
        users,
        roles: tenant_roles(),
        me: me.to_string(),
        can_restore: p.require(Permission::UsersRestore).is_ok(),
    })
}
