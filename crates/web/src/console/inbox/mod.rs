//! `/inbox` and `/inbox/{conversation_id}`: the shared inbox and a conversation.
//!
//! - `/inbox`: the tenant's conversations by last activity (the core's
//!   `messaging::list_conversations`, as `GET /api/v1/conversations`), narrowed by a GET form
//!   (status, assignee incl. "me" and "unassigned", label), paged with the API's cursor.
//! - `/inbox/{id}`: the conversation's latest messages (`messaging::latest_messages`, read from
//!   the end; "Earlier messages" pages from the start with `messaging::list_messages`, as
//!   `GET /api/v1/conversations/{id}/messages`), the internal notes among them apart, a composer (text while the customer service window is open, else a template), and
//!   the assign / labels / status forms. Changes are `data-api` forms against the JSON API.
//! - Live: `static/inbox.js` listens on the websocket (`live.js`) and re-fetches the parts an
//!   event touches as server-rendered fragments: `/inbox?fragment=list&…` (the list, with the
//!   same filters) and `/inbox/{id}?fragment=messages` / `?fragment=details`. A fragment is the
//!   same template block the page includes, rendered alone.

mod conversation;
mod list;
mod send_file;

pub use conversation::*;
pub use list::*;

use super::page::{app_error, non_blank, render, Chrome, Nav};
use super::session::url_encode;
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::messaging::{
    self, ConversationListItemView, ConversationQuery, ConversationView, MessageView,
};
use palisade_core::{AppError, Services};
use palisade_domain::{rfc3339, ConversationId, MessageId};
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(list::inbox))
        .route("/inbox/{id}", get(conversation::conversation))
        // The upload counts its bytes itself (`routes::tickets::read_upload`'s limit).
        .route(
            "/inbox/{id}/attachments",
            axum::routing::post(send_file::send_file)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

async fn people(s: &Services, viewer: &Viewer) -> Vec<Person> {
    // Everyone may read the tenant's users (users.read); if that ever fails, the page still
    // works with ids instead of names.
    palisade_core::users::list(s, &viewer.principal, None, false)
        .await
        .map(|users| {
            users
                .into_iter()
                .map(|u| Person {
                    id: u.id.as_uuid().to_string(),
                    name: u.name,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn name_of(people: &[Person], id: Option<Uuid>) -> Option<String> {
    let id = id?.to_string();
    Some(
        people
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "a former user".to_owned()),
    )
}
