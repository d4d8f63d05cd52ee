//! `/settings/tenant`: the tenant's name, password policy and two-factor requirement.
//!
//! Reading the tenant is open to every member in the API; this page is for changing it, so it
//! asks the core's `tenant.manage` permission first (the one `PATCH /api/v1/tenant` needs): an
//! agent gets the `403` page.

use crate::console::page::{app_error, render, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::tenants::{self, TenantView};
use palisade_domain::{PasswordPolicyPreset, Permission, TwoFactorRequirement};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/tenant", get(tenant_page))
}

/// A choice of a `<select>`: value, label, whether it is the current one.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "admin/tenant.html")]
struct TenantPage {
    chrome: Chrome,
    tenant: TenantView,
    policies: Vec<Choice>,
    requirements: Vec<Choice>,
}

async fn tenant_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    if let Err(e) = viewer.principal.require(Permission::TenantManage) {
        return app_error(e);
    }
    let tenant = match tenants::get(s, &viewer.principal).await {
        Ok(t) => TenantView::from(&t),
        Err(e) => return app_error(e),
    };
    let policies = [
        (
            PasswordPolicyPreset::Modern,
            "Modern: 12+ characters, hard to guess, no expiry (NIST)",
        ),
        (
            PasswordPolicyPreset::Compliance,
            "Compliance: adds upper, lower, digit and symbol, and a 90-day expiry",
        ),
    ]
    .into_iter()
    .map(|(p, label)| Choice {
        value: p.as_str(),
        label,
        selected: p == tenant.password_policy,
    })
    .collect();
    let requirements = [
        (
            TwoFactorRequirement::Off,
            "Nobody (each person may enable it)",
        ),
        (TwoFactorRequirement::Admins, "Admins"),
        (TwoFactorRequirement::Everyone, "Everyone"),
    ]
    .into_iter()
    .map(|(r, label)| Choice {
        value: r.as_str(),
        label,
        selected: r == tenant.require_2fa,
    })
    .collect();
    render(&TenantPage {
        chrome: Chrome::new(s, &viewer, "Tenant", Nav::Settings),
        tenant,
        policies,
        requirements,
    })
}
