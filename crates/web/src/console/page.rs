//! What every signed-in page shares (the "chrome": header, navigation, impersonation banner,
//! CSRF token, session timer) and the error page.
//!
//! The error page is rendered from anywhere (`app_error` in a handler, the session layer, the
//! router's 404), without a viewer at hand. Under an impersonation it must still show the
//! banner with its "End" button, so the session layer lends it the frame for the request
//! ([`with_error_frame`], a task-local like the request id).

use super::assets;
use super::session::Viewer;
use crate::error::Classified;
use crate::AppState;
use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use palisade_core::auth::{sessions, Principal};
use palisade_core::Services;
use palisade_domain::Role;

/// The section of the navigation a page belongs to (marked `aria-current`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Inbox,
    Contacts,
    Deals,
    Templates,
    Tickets,
    Campaigns,
    Analytics,
    Security,
    Settings,
    Audit,
    Admin,
    None,
}

impl Nav {
    pub const fn as_str(self) -> &'static str {
        match self {
            Nav::Inbox => "inbox",
            Nav::Contacts => "contacts",
            Nav::Deals => "deals",
            Nav::Templates => "templates",
            Nav::Tickets => "tickets",
            Nav::Campaigns => "campaigns",
            Nav::Analytics => "analytics",
            Nav::Security => "security",
            Nav::Settings => "settings",
            Nav::Audit => "audit",
            Nav::Admin => "admin",
            Nav::None => "",
        }
    }
}

/// The operator behind an impersonation, shown in a banner on every page with an "End" button
/// (`POST /impersonation/end`, see `console::ops::impersonation`).
#[derive(Debug, Clone)]
pub struct ImpersonationBanner {
    pub operator_email: String,
    pub write: bool,
    /// The operator's reason (when the impersonation was started from the console).
    pub reason: Option<String>,
    /// When the impersonation's token expires (RFC 3339; empty if unknown).
    pub ends_at: String,
    /// Whole minutes left until then (at least 1 while it lasts).
    pub minutes_left: i64,
}

/// The frame of a signed-in page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub nav: Nav,
    pub user_name: String,
    pub user_email: String,
    pub role: &'static str,
    pub tenant_name: Option<String>,
    /// The session's CSRF token, for forms and `X-CSRF-Token` (not a credential: it only works
    /// together with the HttpOnly session cookie).
    pub csrf: String,
    pub is_admin: bool,
    pub is_super_admin: bool,
    pub impersonation: Option<ImpersonationBanner>,
    /// Unix seconds at which the access cookie expires; `app.js` renews it a minute before.
    pub expires_at: i64,
    pub asset_version: &'static str,
}

impl Chrome {
    pub fn new(s: &Services, viewer: &Viewer, title: impl Into<String>, nav: Nav) -> Chrome {
        let p: &Principal = &viewer.principal;
        Chrome {
            title: title.into(),
            nav,
            user_name: p.name.clone(),
            user_email: p.email.clone(),
            role: p.role.as_str(),
            tenant_name: p.tenant.as_ref().map(|t| t.name.clone()),
            csrf: p
                .session_id()
                .map(|sid| sessions::csrf_token(s, sid))
                .unwrap_or_default(),
            is_admin: matches!(p.role, Role::Admin | Role::SuperAdmin),
            is_super_admin: p.role == Role::SuperAdmin && p.impersonator.is_none(),
            impersonation: p.impersonator.as_ref().map(|i| {
                let now = s.now().unix_timestamp();
                let ends = viewer.expires_at.unwrap_or(now);
                ImpersonationBanner {
                    operator_email: i.email.clone(),
                    write: i.write,
                    reason: viewer.impersonation_reason.clone(),
                    ends_at: time::OffsetDateTime::from_unix_timestamp(ends)
                        .map(palisade_domain::rfc3339)
                        .unwrap_or_default(),
                    minutes_left: ((ends - now + 59) / 60).max(1),
                }
            }),
            expires_at: viewer.expires_at.unwrap_or(0),
            asset_version: assets::version(),
        }
    }

    /// `aria-current="page"` belongs on the link of section `name` (`inbox`, `contacts`, …).
    pub fn is(&self, name: &str) -> bool {
        self.nav.as_str() == name
    }
}

/// Renders a template as a page; a template that fails to render is a 500 page (logged).
pub fn render(t: &impl Template) -> Response {
    render_with(StatusCode::OK, t)
}

pub fn render_with(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

tokio::task_local! {
    /// The frame of the request's error page: set only under an impersonation.
    static ERROR_FRAME: Option<Chrome>;
}

/// Runs `f` (the rest of a request) with `frame` for any error page it renders: the frame of
/// an impersonated viewer, so that the page shows the impersonation banner.
pub async fn with_error_frame<F: std::future::Future>(frame: Option<Chrome>, f: F) -> F::Output {
    ERROR_FRAME.scope(frame, f).await
}

/// The frame for an error page under an impersonation; `None` for everyone else (error pages
/// show no navigation, so a plain viewer needs nothing from it).
pub fn error_frame(s: &Services, viewer: &Viewer) -> Option<Chrome> {
    viewer
        .principal
        .impersonator
        .is_some()
        .then(|| Chrome::new(s, viewer, "", Nav::None))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    message: &'a str,
    request_id: String,
    asset_version: &'static str,
    /// Under an impersonation: the frame, for the banner.
    chrome: Option<Chrome>,
}

/// An error as a page of its own (403, 404, 429, 500, …), with the API's message (and the
/// impersonation banner the session layer lent the request, if any).
pub fn error_page(c: Classified) -> Response {
    error_page_in(ERROR_FRAME.try_with(Clone::clone).ok().flatten(), c)
}

/// [`error_page`] with the frame given (`None`: no banner).
pub fn error_page_in(chrome: Option<Chrome>, c: Classified) -> Response {
    let heading = match c.status {
        StatusCode::FORBIDDEN => "You can't open this page",
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::TOO_MANY_REQUESTS => "Slow down",
        StatusCode::UNAUTHORIZED => "Please sign in",
        s if s.is_server_error() => "Something went wrong",
        _ => "This didn't work",
    };
    let page = ErrorPage {
        status: c.status.as_u16(),
        heading,
        message: &c.message,
        request_id: crate::middleware::current_request_id(),
        asset_version: assets::version(),
        chrome,
    };
    let mut resp = render_with(c.status, &page);
    if let Some(secs) = c.retry_after_secs {
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// An application error on a page: the API's status and message, as a page.
pub fn app_error(e: palisade_core::AppError) -> Response {
    error_page(crate::error::classify(e))
}

/// The HTML 404 for a path that is neither a page nor an API route.
pub fn not_found(path: &str) -> Response {
    error_page(not_found_error(path))
}

/// The router's HTML 404 (a path no route has, outside the session layer): the banner comes
/// from the access cookie, checked as on every page.
pub async fn route_not_found(state: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let frame = super::session::error_frame_of(state, headers).await;
    error_page_in(frame, not_found_error(path))
}

fn not_found_error(path: &str) -> Classified {
    Classified {
        status: StatusCode::NOT_FOUND,
        code: palisade_core::error::code::NOT_FOUND,
        message: format!("There is no page at {path}."),
        fields: None,
        retry_after_secs: None,
    }
}

/// An option of a page's `<select>`: the value sent and the text shown.
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// Options whose text is the value made readable (`IN_APPEAL` → `In appeal`).
pub fn named_choices<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice {
            value: v.to_owned(),
            label: humanise(v),
        })
        .collect()
}

/// An API value as words: `IN_APPEAL` → `In appeal`, `account_under_attack` → `Account under
/// attack`.
pub fn humanise(s: &str) -> String {
    let lower = s.replace('_', " ").to_ascii_lowercase();
    let mut c = lower.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// The API's field errors as a form shows them: each field's messages on one line, for its
/// `<name>-error` slot.
pub fn field_lines(
    fields: Option<std::collections::BTreeMap<String, Vec<String>>>,
) -> std::collections::BTreeMap<String, String> {
    fields
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.join(" ")))
        .collect()
}

/// A form field or query value, trimmed; `None` when blank (a GET filter form sends every
/// field, empty for "any").
pub fn non_blank(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// An optional id in a list page's query: `None` when blank, the API's `400 invalid_query`
/// naming `what` when it is not an id.
pub fn query_id(value: &str, what: &str) -> Result<Option<uuid::Uuid>, Response> {
    match non_blank(value) {
        None => Ok(None),
        Some(v) => uuid::Uuid::parse_str(&v).map(Some).map_err(|_| {
            app_error(palisade_core::AppError::BadRequest {
                code: palisade_core::error::code::INVALID_QUERY,
                message: format!("{what} is not valid"),
            })
        }),
    }
}

/// A list page's `cursor` (the API's `next_cursor` of the page before), or the `400` page.
pub fn query_cursor(value: &str) -> Result<Option<uuid::Uuid>, Response> {
    query_id(value, "cursor (the next_cursor of a previous page)")
}

/// The filters a list page was given, as the query string of its next-page link (blank ones
/// left out).
pub fn filter_query(filters: &[(&str, &str)]) -> String {
    filters
        .iter()
        .filter_map(|(k, v)| {
            non_blank(v).map(|v| format!("{k}={}", crate::console::session::url_encode(&v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// What a filtered list page shows around its rows: the filters as the query of its next
/// page's link, whether any filter is set (the empty state and "Clear" say so), the next
/// page's cursor, and the API's refusal of a filter (above the form, each field's message next
/// to its field, and the API's status for the page).
pub struct Listing {
    path: String,
    pub filters: String,
    pub filtered: bool,
    pub next_cursor: Option<uuid::Uuid>,
    pub error: String,
    fields: std::collections::BTreeMap<String, String>,
    pub status: StatusCode,
}

impl Listing {
    /// The list at `path`, as filtered by `filters` (name and value as the form sent them).
    pub fn new(path: impl Into<String>, filters: &[(&str, &str)]) -> Self {
        let filters = filter_query(filters);
        Listing {
            path: path.into(),
            filtered: !filters.is_empty(),
            filters,
            next_cursor: None,
            error: String::new(),
            fields: std::collections::BTreeMap::new(),
            status: StatusCode::OK,
        }
    }

    /// The API's message for the filter `name` ("" when it took it).
    pub fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The link to the next page, the filters kept (`None` on the last page).
    pub fn next_href(&self) -> Option<String> {
        self.next_cursor.map(|c| match self.filters.as_str() {
            "" => format!("{}?cursor={c}", self.path),
            f => format!("{}?{f}&cursor={c}", self.path),
        })
    }

    /// The rows of the page the use case answered, its cursor kept for the next page's link.
    /// A query the API refuses (`400`, `422`: a filter) is kept to be said on the form, with
    /// no rows and the API's status; any other error is the error page.
    pub fn rows<T>(
        &mut self,
        found: Result<palisade_core::pagination::Page<T>, palisade_core::AppError>,
    ) -> Result<Vec<T>, Response> {
        use palisade_core::AppError;
        match found {
            Ok(page) => {
                self.next_cursor = page.next_cursor;
                Ok(page.data)
            }
            Err(e @ (AppError::Validation { .. } | AppError::BadRequest { .. })) => {
                let c = crate::error::classify(e);
                self.error = c.message;
                self.fields = field_lines(c.fields);
                self.status = c.status;
                Ok(Vec::new())
            }
            Err(e) => Err(app_error(e)),
        }
    }
}

/// A page's query string, read into `T`; one that does not read is the `400` page
/// ([`bad_query`]) before the handler runs.
pub struct PageQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for PageQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| PageQuery(q))
            .map_err(bad_query)
    }
}

pub fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> Response {
    app_error(palisade_core::AppError::BadRequest {
        code: palisade_core::error::code::INVALID_QUERY,
        message: format!(
            "This page's address is not valid: {}",
            rejection.body_text()
        ),
    })
}

/// A contact as a person knows it: "Name (+phone)", the WhatsApp profile name when it has no
/// name, else the phone.
pub(crate) fn contact_label(c: &palisade_domain::contact::Contact) -> String {
    c.name
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .or_else(|| c.wa_profile_name.clone())
        .map(|n| format!("{n} ({})", c.phone.as_str()))
        .unwrap_or_else(|| c.phone.as_str().to_owned())
}

/// The tenant's WhatsApp connections as choices (display name and number), for those who may
/// read them (`whatsapp.connections.manage`: admins); empty for the others, whose pages then
/// leave the number out.
pub(crate) async fn connection_choices(
    s: &palisade_core::Services,
    p: &palisade_core::auth::Principal,
) -> Vec<Choice> {
    palisade_core::whatsapp::connections::list(s, p)
        .await
        .map(|list| {
            list.into_iter()
                .map(|c| Choice {
                    value: c.id.to_string(),
                    label: match c.display_phone_number {
                        Some(n) => format!("{} ({n})", c.display_name),
                        None => c.display_name,
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Each choice's label by its value (to show a stored value as its option reads).
pub(crate) fn label_map(choices: &[Choice]) -> std::collections::HashMap<String, String> {
    choices
        .iter()
        .map(|c| (c.value.clone(), c.label.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_values_read_as_words() {
        assert_eq!(
            super::humanise("account_under_attack"),
            "Account under attack"
        );
        assert_eq!(super::humanise("IN_APPEAL"), "In appeal");
        assert_eq!(super::humanise("open"), "Open");
        assert_eq!(super::humanise(""), "");
    }
}
