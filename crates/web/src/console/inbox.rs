//! `/inbox`: the shared inbox. (First cut: the list of conversations; the conversation page,
//! filters and live updates follow.)

use super::page::{app_error, render, Chrome, Nav};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::messaging::{self, ConversationQuery, ConversationView};

pub fn router() -> Router<AppState> {
    Router::new().route("/inbox", get(inbox))
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    chrome: Chrome,
    conversations: Vec<ConversationView>,
}

async fn inbox(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let query = ConversationQuery {
        status: None,
        assignee: None,
        label: None,
        cursor: None,
        limit: Some(50),
    };
    let page = match messaging::list_conversations(s, &viewer.principal, query).await {
        Ok(p) => p,
        Err(e) => return app_error(e),
    };
    render(&InboxPage {
        chrome: Chrome::new(s, &viewer, "Inbox", Nav::Inbox),
        conversations: page
            .data
            .iter()
            .map(|i| ConversationView::from(&i.conversation))
            .collect(),
    })
}
