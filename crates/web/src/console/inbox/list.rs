//! `/inbox`: the conversations by last activity, with their filters, and its live fragment.

use super::*;

/// How many conversations a page of the list shows.
pub(super) const LIST_PAGE: i64 = 50;
/// How many of the latest messages a conversation page shows (older ones: "Earlier messages").
/// Notes are messages of the conversation too: the notes panel shows the notes among these, and
/// older notes are on the "Earlier messages" pages beside the messages they were written
/// among. (A separate read of the latest notes would scan the whole conversation when it has
/// none: there is no index by direction.)
pub(super) const LATEST_MESSAGES: i64 = 100;

/// The list's filters and position, as the GET form and the paging links carry them. Empty
/// values (the form's "Any") are no filter.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub(super) status: Option<String>,
    pub(super) assignee: Option<String>,
    pub(super) label: Option<String>,
    pub(super) cursor: Option<String>,
    /// `list`: only the list (for live updates).
    pub(super) fragment: Option<String>,
}

/// A query value, trimmed; `None` when absent or blank.
pub(super) fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().and_then(non_blank)
}

/// The filters in effect, for the form, the links and the fragment's address.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: String,
    pub assignee: String,
    pub label: String,
}

impl Filters {
    fn from_query(q: &ListQuery) -> Filters {
        Filters {
            status: non_empty(&q.status).unwrap_or_default(),
            assignee: non_empty(&q.assignee).unwrap_or_default(),
            label: non_empty(&q.label).unwrap_or_default(),
        }
    }

    /// `status=…&assignee=…&label=…` (only those set), percent-encoded.
    pub fn query(&self) -> String {
        [
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("label", &self.label),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// `?<query>` or nothing: appended to a conversation's link so that the list beside it keeps
    /// the filters.
    pub fn suffix(&self) -> String {
        let q = self.query();
        if q.is_empty() {
            q
        } else {
            format!("?{q}")
        }
    }

    /// `&<query>` or nothing: appended to a link that already has a query.
    pub fn and(&self) -> String {
        let q = self.query();
        if q.is_empty() {
            q
        } else {
            format!("&{q}")
        }
    }

    pub fn any(&self) -> bool {
        !(self.status.is_empty() && self.assignee.is_empty() && self.label.is_empty())
    }
}

/// A user of the tenant, as the assignee filter and the assign form offer them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
}

/// One line of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub status: String,
    pub labels: Vec<String>,
    pub assignee: Option<String>,
    pub preview: Option<String>,
    pub preview_outbound: bool,
    pub last_at: String,
    pub current: bool,
}

/// The list as a page or fragment shows it.
pub struct ListView {
    pub rows: Vec<Row>,
    pub filters: Filters,
    pub next_cursor: Option<String>,
    pub paged: bool,
    /// The API's refusal of a filter (a field error), shown above the list.
    pub error: String,
    pub error_field: String,
    pub people: Vec<Person>,
    pub me: String,
}

impl ListView {
    /// The address the live script re-fetches the list from.
    pub fn fragment_url(&self) -> String {
        format!("/inbox?fragment=list{}", self.filters.and())
    }
}

/// Until the list carries each conversation's last message.
pub(super) struct Preview {
    direction: String,
    r#type: String,
    text: Option<String>,
}

/// Loads the list for `q`. A filter the core refuses (422) becomes a message on the page, with
/// an empty list; any other refusal is the error page.
pub(super) async fn load_list(
    s: &Services,
    viewer: &Viewer,
    q: &ListQuery,
    current: Option<Uuid>,
) -> Result<ListView, Response> {
    let filters = Filters::from_query(q);
    let people = people(s, viewer).await;
    let mut view = ListView {
        rows: Vec::new(),
        filters: filters.clone(),
        next_cursor: None,
        paged: non_empty(&q.cursor).is_some(),
        error: String::new(),
        error_field: String::new(),
        me: viewer.principal.user_id.as_uuid().to_string(),
        people,
    };
    let query = ConversationQuery {
        status: non_empty(&q.status),
        assignee: non_empty(&q.assignee),
        label: non_empty(&q.label),
        cursor: non_empty(&q.cursor),
        limit: Some(LIST_PAGE),
    };
    let page = match messaging::list_conversations(s, &viewer.principal, query).await {
        Ok(p) => p,
        Err(AppError::Validation { message, fields }) => {
            view.error_field = fields.keys().next().cloned().unwrap_or_default();
            view.error = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                .collect::<Vec<_>>()
                .join(" ");
            if view.error.is_empty() {
                view.error = message;
            }
            return Ok(view);
        }
        // A cursor that is not one of this list's: the API's 400, as a message on the page.
        Err(AppError::BadRequest { message, .. }) => {
            view.error_field = "cursor".to_owned();
            view.error = format!("cursor: {message}");
            return Ok(view);
        }
        Err(e) => return Err(app_error(e)),
    };
    view.next_cursor = page.next_cursor;
    view.rows = page
        .data
        .iter()
        .map(|item| {
            let item = ConversationListItemView::from(item);
            let c = item.conversation;
            let last: Option<Preview> = item.last_message.map(|m| Preview {
                direction: m.direction.to_string(),
                r#type: m.r#type.to_string(),
                text: m.text,
            });
            Row {
                id: c.id,
                name: c
                    .contact_name
                    .clone()
                    .unwrap_or_else(|| c.contact_phone.clone()),
                phone: c.contact_phone,
                status: c.status,
                labels: c.labels,
                assignee: name_of(&view.people, c.assignee_id),
                preview_outbound: last.as_ref().is_some_and(|m| m.direction == "outbound"),
                preview: last.map(|m| m.text.unwrap_or_else(|| format!("[{}]", m.r#type))),
                last_at: c.last_message_at,
                current: Some(c.id) == current,
            }
        })
        .collect();
    Ok(view)
}

#[derive(Template)]
#[template(path = "inbox/index.html")]
pub(super) struct InboxPage {
    chrome: Chrome,
    list: ListView,
}

#[derive(Template)]
#[template(path = "inbox/list.html")]
pub(super) struct ListFragment {
    list: ListView,
}

pub(super) async fn inbox(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let s = &state.services;
    let list = match load_list(s, &viewer, &q, None).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let status = if list.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = if q.fragment.as_deref() == Some("list") {
        render(&ListFragment { list })
    } else {
        render(&InboxPage {
            chrome: Chrome::new(s, &viewer, "Inbox", Nav::Inbox),
            list,
        })
    };
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}
