//! Impersonation in the console: an operator's browser acts as a tenant's owner.
//!
//! The API's `POST /api/v1/admin/tenants/{id}/impersonate` answers an access token (30 minutes,
//! no refresh token). A script must never hold it, so the console starts the impersonation
//! itself (`POST /admin/tenants/{id}/impersonate`, a same-origin form with the operator's
//! session CSRF token) through the same core function, and then:
//! - the impersonation's token becomes the access cookie (HttpOnly, as any session's);
//! - the operator's own refresh token is moved aside into `palisade_operator_refresh`
//!   (HttpOnly, SameSite=Strict), and the normal refresh cookie is removed, so nothing can
//!   renew the impersonation and no page under it can use the operator's session;
//! - the operator's reason goes into `palisade_impersonation` (HttpOnly) for the banner. It is
//!   only ever shown to this browser; the audited reason is the one in the tenant's log.
//!
//! "End" (`POST /impersonation/end`, CSRF-checked) revokes the impersonation's session through
//! the core (`sessions::logout`, audited as the owner's session under the operator) and puts
//! the operator's refresh token back; the next page load renews the operator's session
//! (`session::resolve`). When the impersonation's token expires or is revoked elsewhere, the
//! same restoration happens at the next page load.

use super::super::auth_pages::{forged, see_other, session_csrf_ok};
use super::super::forms::same_origin;
use super::super::page::app_error;
use super::super::session::url_encode;
use super::super::Viewer;
use super::parse_id;
use crate::cookies;
use crate::extract::Meta;
use crate::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use palisade_core::auth::sessions;
use palisade_core::platform;
use palisade_domain::TenantId;
use serde::Deserialize;

pub const OPERATOR_REFRESH: &str = "palisade_operator_refresh";
pub const REASON: &str = "palisade_impersonation";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants/{id}/impersonate", post(start))
        .route("/impersonation/end", post(end))
}

/// The operator's refresh token, kept aside while this browser impersonates someone.
pub fn stashed_refresh(headers: &HeaderMap, secure: bool) -> Option<&str> {
    cookies::get(headers, &cookies::name(OPERATOR_REFRESH, secure)).filter(|v| !v.is_empty())
}

/// The reason of the impersonation this browser is under, as the operator typed it.
pub fn reason(headers: &HeaderMap, secure: bool) -> Option<String> {
    cookies::get(headers, &cookies::name(REASON, secure))
        .filter(|v| !v.is_empty())
        .map(percent_decode)
}

/// Set-Cookie headers that forget the operator's kept session and the reason.
pub fn clear_stash(headers: &mut HeaderMap, secure: bool) {
    for base in [OPERATOR_REFRESH, REASON] {
        if let Some(c) = cookies::cookie(&cookies::name(base, secure), "", 0, true, secure) {
            headers.append(header::SET_COOKIE, c);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(b), _) => {
                out.push(*b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    #[serde(default)]
    reason: String,
    /// `read` or `write` (radio buttons).
    #[serde(default)]
    access: String,
}

async fn start(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    viewer: Viewer,
    Path(id): Path<String>,
    form: Result<Form<StartForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let Ok(Form(f)) = form else {
        return forged();
    };
    if !same_origin(&headers) || !session_csrf_ok(s, &viewer, &f.csrf) {
        return forged();
    }
    let Some(id) = parse_id(&id) else {
        return super::super::page::not_found(&format!("/admin/tenants/{id}"));
    };
    let write = f.access == "write";
    let imp = match platform::impersonate(
        s,
        &viewer.principal,
        &meta,
        TenantId::from_uuid(id),
        &f.reason,
        write,
    )
    .await
    {
        Ok(imp) => imp,
        Err(e) => return super::tenants::page_with_error(&state, &viewer, e).await,
    };
    let mut resp = see_other("/inbox");
    let h = resp.headers_mut();
    let refresh_ttl = i64::try_from(s.settings.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let ttl = imp.tokens.expires_in;
    let operator_refresh = cookies::get(&headers, &cookies::name(cookies::REFRESH, secure));
    let set = [
        operator_refresh.and_then(|rt| {
            cookies::cookie(
                &cookies::name(OPERATOR_REFRESH, secure),
                rt,
                refresh_ttl,
                true,
                secure,
            )
        }),
        cookies::cookie(
            &cookies::name(cookies::ACCESS, secure),
            &imp.tokens.access_token,
            ttl,
            true,
            secure,
        ),
        cookies::cookie(
            &cookies::name(cookies::REFRESH, secure),
            "",
            0,
            true,
            secure,
        ),
        cookies::cookie(
            &cookies::name(cookies::CSRF, secure),
            &imp.tokens.csrf_token,
            ttl,
            false,
            secure,
        ),
        cookies::cookie(
            &cookies::name(REASON, secure),
            &url_encode(f.reason.trim()),
            ttl,
            true,
            secure,
        ),
    ];
    for c in set.into_iter().flatten() {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

#[derive(Deserialize)]
pub struct EndForm {
    csrf: String,
}

async fn end(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    viewer: Option<Viewer>,
    form: Result<Form<EndForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    if let Some(viewer) = viewer.filter(|v| v.principal.impersonator.is_some()) {
        let Ok(Form(f)) = form else {
            return forged();
        };
        if !same_origin(&headers) || !session_csrf_ok(s, &viewer, &f.csrf) {
            return forged();
        }
        if let Err(e) = sessions::logout(s, &viewer.principal, &meta).await {
            return app_error(e);
        }
    } else if !same_origin(&headers) {
        return forged();
    }
    // Whether it was just ended or had already expired: the operator's own session comes back.
    let mut resp = see_other("/admin/tenants");
    let h = resp.headers_mut();
    let restore = stashed_refresh(&headers, secure).and_then(|rt| {
        let ttl = i64::try_from(s.settings.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
        cookies::cookie(
            &cookies::name(cookies::REFRESH, secure),
            rt,
            ttl,
            true,
            secure,
        )
    });
    cookies::clear(h, secure);
    clear_stash(h, secure);
    if let Some(c) = restore {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_survives_its_cookie() {
        let r = "Ticket #42: «can't send» & <b>";
        assert_eq!(percent_decode(&url_encode(r)), r);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
