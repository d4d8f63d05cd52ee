//! `/security/alerts`: the detection rules' alerts with the security metrics on top (admins:
//! their tenant; super admins: every tenant, with a tenant column).
//!
//! Reading calls `palisade_core::detections::api::{list, metrics}`, the use cases of
//! `GET /api/v1/security/alerts` and `GET /api/v1/security/metrics`, so an agent gets the `403`
//! page. The filters are a plain `GET` form with the API's names; a value the API refuses is
//! shown above the table with its `400`. Acknowledge and Resolve (with an optional note) are
//! `data-api` forms against `POST /api/v1/security/alerts/{id}/acknowledge|resolve`.

use super::page::{
    app_error, filter_query, humanise, named_choices, non_blank, render_with, Choice, Chrome, Nav,
    PageQuery,
};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::detections::api::{self, AlertQuery};
use palisade_core::detections::{AlertView, SecurityMetricsView};
use palisade_core::{platform, AppError};
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
    /// The filters as a query string, for the next page's link.
    filters: String,
    filtered: bool,
    next_cursor: Option<Uuid>,
    error: String,
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
    let filters = filter_query(&[
        ("status", &params.status),
        ("severity", &params.severity),
        ("rule", &params.rule),
    ]);
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
        filtered: !filters.is_empty(),
        filters,
        next_cursor: None,
        error: String::new(),
        show_tenant: platform_view,
        can_manage: p.require(Permission::SecurityAlertsManage).is_ok(),
    };
    let mut status = StatusCode::OK;
    let cursor = match params.cursor.trim() {
        "" => None,
        c => match Uuid::parse_str(c) {
            Ok(id) => Some(id),
            Err(_) => {
                return app_error(AppError::BadRequest {
                    code: palisade_core::error::code::INVALID_QUERY,
                    message: "cursor must be the next_cursor of a previous page".into(),
                })
            }
        },
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
    match api::list(s, p, query).await {
        Ok(found) => {
            page.next_cursor = found.next_cursor;
            page.alerts = found
                .data
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
        }
        // A filter the API does not know: said above the table, with the API's 400.
        Err(e @ AppError::BadRequest { .. }) => {
            let c = crate::error::classify(e);
            page.error = c.message;
            status = c.status;
        }
        Err(e) => return app_error(e),
    }
    match api::metrics(s, p, None, None).await {
        Ok(m) => page.metrics = Some(m),
        Err(e) => return app_error(e),
    }
    render_with(status, &page)
}
