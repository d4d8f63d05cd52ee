//! `/audit`: the tenant's audit log — a search form with the API's filters, cursor paging and
//! an export link.
//!
//! The page searches through the core's `audit::log::search`, as `GET /api/v1/audit-logs`
//! does (admins only: an agent gets the `403` page). The filters are the API's; the dates also
//! accept a plain day (`2026-01-31`) or a browser's local date-time, read as UTC. The export
//! link is the API's own `GET /api/v1/audit-logs/export` with the same filters.

use crate::console::page::{app_error, bad_query, render_with, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::audit::log::{self, AuditFilter};
use palisade_core::audit::AuditRecordView;
use palisade_core::pagination::Page;
use palisade_domain::{AuditRecordId, UserId};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit_page))
}

const PAGE_SIZE: i64 = 50;

/// The search form's values as typed (kept to fill the form again).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditForm {
    action: String,
    actor_id: String,
    target_type: String,
    target_id: String,
    from: String,
    to: String,
    q: String,
    cursor: String,
}

/// Problems with the form's values, shown next to their fields.
#[derive(Default)]
struct FormErrors {
    actor_id: String,
    from: String,
    to: String,
    cursor: String,
}

impl FormErrors {
    fn any(&self) -> bool {
        !(self.actor_id.is_empty()
            && self.from.is_empty()
            && self.to.is_empty()
            && self.cursor.is_empty())
    }
}

/// A date as the API takes it (RFC 3339), from RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`.
fn parse_time(v: &str) -> Option<OffsetDateTime> {
    let v = v.trim();
    let full = match v.len() {
        10 => format!("{v}T00:00:00Z"),
        16 => format!("{v}:00Z"),
        _ => v.to_owned(),
    };
    OffsetDateTime::parse(&full, &Rfc3339).ok()
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    form: AuditForm,
    errors: FormErrors,
    records: Vec<AuditRecordView>,
    /// The filters as a query string (without cursor), for paging and the export links.
    filters: String,
    next_cursor: Option<Uuid>,
    filtered: bool,
}

impl AuditPage {
    fn metadata(r: &AuditRecordView) -> String {
        if r.metadata.as_object().is_some_and(|o| o.is_empty()) || r.metadata.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&r.metadata).unwrap_or_default()
        }
    }
}

async fn audit_page(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Result<Query<AuditForm>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let form = match form {
        Ok(Query(v)) => v,
        Err(rejection) => return bad_query(rejection),
    };
    let mut errors = FormErrors::default();
    let actor_id = match non_empty(&form.actor_id).map(|v| Uuid::parse_str(&v)) {
        Some(Ok(id)) => Some(UserId::from(id)),
        Some(Err(_)) => {
            errors.actor_id = "must be a user id (a UUID)".into();
            None
        }
        None => None,
    };
    let cursor = match non_empty(&form.cursor).map(|v| Uuid::parse_str(&v)) {
        Some(Ok(id)) => Some(AuditRecordId::from(id)),
        Some(Err(_)) => {
            errors.cursor = "The page link is broken; start from the first page.".into();
            None
        }
        None => None,
    };
    let time_field = |v: &str, slot: &mut String| match non_empty(v) {
        Some(v) => {
            let t = parse_time(&v);
            if t.is_none() {
                *slot = "must be a date like 2026-01-31 or a time like 2026-01-31T12:00:00Z".into();
            }
            t
        }
        None => None,
    };
    let from = time_field(&form.from, &mut errors.from);
    let to = time_field(&form.to, &mut errors.to);
    let filter = AuditFilter {
        tenant: None,
        action: non_empty(&form.action),
        actor_id,
        target_type: non_empty(&form.target_type),
        target_id: non_empty(&form.target_id),
        from,
        to,
        q: non_empty(&form.q).map(|q| q.chars().take(200).collect()),
        before_id: cursor,
        limit: PAGE_SIZE + 1,
    };
    let mut filters = Vec::new();
    for (k, v) in [
        ("action", &filter.action),
        ("target_type", &filter.target_type),
        ("target_id", &filter.target_id),
        ("q", &filter.q),
    ] {
        if let Some(v) = v {
            filters.push(format!("{k}={}", encode(v)));
        }
    }
    if let Some(a) = filter.actor_id {
        filters.push(format!("actor_id={}", a.as_uuid()));
    }
    for (k, t) in [("from", filter.from), ("to", filter.to)] {
        if let Some(t) = t {
            filters.push(format!("{k}={}", encode(&palisade_domain::rfc3339(t))));
        }
    }
    let filtered = !filters.is_empty();
    let chrome = Chrome::new(s, &viewer, "Audit log", Nav::Audit);
    if errors.any() {
        // Still the admins' page: the permission is checked before anything is shown.
        if let Err(e) = viewer
            .principal
            .require(palisade_domain::Permission::AuditLogRead)
        {
            return app_error(e);
        }
        return render_with(
            StatusCode::BAD_REQUEST,
            &AuditPage {
                chrome,
                form,
                errors,
                records: Vec::new(),
                filters: filters.join("&"),
                next_cursor: None,
                filtered,
            },
        );
    }
    let records = match log::search(s, &viewer.principal, filter).await {
        Ok(r) => r,
        Err(e) => return app_error(e),
    };
    let page =
        Page::from_overfetch(records, PAGE_SIZE, |r| r.id.as_uuid()).map(AuditRecordView::from);
    render_with(
        StatusCode::OK,
        &AuditPage {
            chrome,
            form,
            errors,
            records: page.data,
            filters: filters.join("&"),
            next_cursor: page.next_cursor,
            filtered,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_as_the_api_reads_them_or_as_a_day_in_utc() {
        assert!(parse_time("2026-01-31").is_some());
        assert!(parse_time("2026-01-31T12:30").is_some());
        assert!(parse_time("2026-01-31T12:30:00Z").is_some());
        assert!(parse_time("31/01/2026").is_none());
        assert_eq!(encode("auth.login.* a&b"), "auth.login.%2A%20a%26b");
    }
}
