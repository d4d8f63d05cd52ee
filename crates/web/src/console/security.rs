//! `/security/alerts`: the detection rules' alerts with the security metrics on top (admins:
//! their tenant; super admins: every tenant, with a tenant column).
//!
//! Reading calls `palisade_core::detections::api::{list, metrics}`, the use cases of
//! `GET /api/v1/security/alerts` and `GET /api/v1/security/metrics`, so an agent gets the `403`
//! page. The filters are a plain `GET` form with the API's names; a value the API refuses is
//! shown above the table with its `400`. Acknowledge and Resolve (with an optional note) are
//! `data-api` forms against `POST /api/v1/security/alerts/{id}/acknowledge|resolve`.

use super::page::{
    app_error, humanise, named_choices, non_blank, query_cursor, render_with, Choice, Chrome,
    Listing, Nav, PageQuery,
};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::detections::api::{self, AlertQuery};
use palisade_core::detections::{AlertView, SecurityMetricsView};
use palisade_core::platform;
use palisade_domain::{AlertRule, AlertSeverity, AlertStatus, Permission, Role};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/security/alerts", get(alerts))
}

/// The filters as a GET form sends them: every value a string (empty: any).
#[derive(Debug, Default, Deserialize)]
struct AlertParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    cursor: String,
}

struct AlertRow {
    alert: AlertView,
    rule: String,
    tenant: String,
}

#[derive(Template)]
#[template(path = "security/alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    metrics: Option<SecurityMetricsView>,
    alerts: Vec<AlertRow>,
    status: String,
    severity: String,
    rule: String,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    rules: Vec<Choice>,
    list: Listing,
    show_tenant: bool,
    can_manage: bool,
}

async fn alerts(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<AlertParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not even allowed to read: the 403 page, before anything else is shown.
    if let Err(e) = p.require(Permission::SecurityAlertsRead) {
        return app_error(e);
    }
    let platform_view = p.role == Role::SuperAdmin && p.impersonator.is_none();
    let mut page = AlertsPage {
        chrome: Chrome::new(s, &viewer, "Security alerts", Nav::Security),
        metrics: None,
        alerts: Vec::new(),
        status: params.status.trim().to_owned(),
        severity: params.severity.trim().to_owned(),
        rule: params.rule.trim().to_owned(),
        statuses: named_choices(AlertStatus::ALL.iter().map(|x| x.as_str())),
        severities: named_choices(AlertSeverity::ALL.iter().map(|x| x.as_str())),
        rules: named_choices(AlertRule::ALL.iter().map(|x| x.as_str())),
        list: Listing::new(
            "/security/alerts",
            &[
                ("status", &params.status),
                ("severity", &params.severity),
                ("rule", &params.rule),
            ],
        ),
        show_tenant: platform_view,
        can_manage: p.require(Permission::SecurityAlertsManage).is_ok(),
    };
    let cursor = match query_cursor(&params.cursor) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let query = AlertQuery {
        status: non_blank(&params.status),
        severity: non_blank(&params.severity),
        rule: non_blank(&params.rule),
        tenant_id: None,
        cursor,
        limit: Some(50),
    };
    let tenants: HashMap<Uuid, String> = if platform_view {
        match platform::list_tenants(s, p).await {
            Ok(list) => list
                .into_iter()
                .map(|(t, _)| (t.id.as_uuid(), t.name))
                .collect(),
            Err(e) => return app_error(e),
        }
    } else {
        HashMap::new()
    };
    let found = match page.list.rows(api::list(s, p, query).await) {
        Ok(found) => found,
        Err(r) => return r,
    };
    page.alerts = found
        .into_iter()
        .map(|a| AlertRow {
            rule: humanise(&a.rule),
            tenant: match a.tenant_id {
                None => "Platform".into(),
                Some(t) => tenants.get(&t).cloned().unwrap_or_else(|| t.to_string()),
            },
            alert: a,
        })
        .collect();
    match api::metrics(s, p, None, None).await {
        Ok(m) => page.metrics = Some(m),
        Err(e) => return app_error(e),
    }
    render_with(page.list.status, &page)
}
