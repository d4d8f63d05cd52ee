//! `/notifications`: the signed-in user's notifications (webhooks waiting for approval,
//! endpoints the worker disabled), newest first, with "Mark read".
//!
//! The header's count badge is filled by `static/notifications.js` from
//! `GET /api/v1/notifications?unread=true` after the page has loaded, so that no page pays a
//! query for it (`Chrome` stays synchronous and free).

use crate::console::page::{app_error, bad_query, render, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::notifications::{self, NotificationView};
use palisade_core::AppError;
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/notifications", get(notifications_page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NotificationsQuery {
    cursor: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "admin/notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    notifications: Vec<NotificationView>,
    next_cursor: Option<Uuid>,
    unread: bool,
    paged: bool,
}

async fn notifications_page(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<NotificationsQuery>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let q = match q {
        Ok(Query(v)) => v,
        Err(rejection) => return bad_query(rejection),
    };
    let cursor = match q.cursor.trim() {
        "" => None,
        c => match Uuid::parse_str(c) {
            Ok(id) => Some(id.into()),
            Err(_) => {
                return app_error(AppError::BadRequest {
                    code: palisade_core::error::code::INVALID_QUERY,
                    message: "The page link is broken; open the notifications again.".into(),
                })
            }
        },
    };
    let page = match notifications::list(s, &viewer.principal, q.unread, cursor, Some(50)).await {
        Ok(p) => p,
        Err(e) => return app_error(e),
    };
    render(&NotificationsPage {
        chrome: Chrome::new(s, &viewer, "Notifications", Nav::None),
        notifications: page.data.iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
        unread: q.unread,
        paged: cursor.is_some(),
    })
}
