//! The pages that get a person in: sign-in (password, then the second factor when asked, or a
//! passkey alone), registration, email verification, forgotten and reset passwords, accepting an
//! invitation, signing out.
//!
//! The steps that issue tokens are answered here, not by the JSON API from script: the console
//! calls the same `palisade_core` functions as the API routes (with the same rate limits) and
//! sets the tokens as HttpOnly cookies, so that no token ever reaches a script. One-time tokens
//! that arrive in a link (`/reset-password?token=…`, `/accept-invite?token=…`) are moved into a
//! short-lived HttpOnly cookie at once and the address bar is cleaned by a redirect.

mod emailed_links;
mod registration;
mod sign_in;

use sign_in::json_error;

use super::assets;
use super::forms::{form_token, same_origin, sign_in_origin, SignInStep, WithCsrf};
use super::page::{app_error, render, render_with, Chrome, Nav};
use super::session::{safe_next, url_encode, MaybeViewer, Viewer};
use crate::cookies;
use crate::error::classify;
use crate::extract::Meta;
use crate::routes::auth::{ip_limit, login_limit, with_cookies};
use crate::routes::auth_mail::per_address;
use crate::AppState;
use askama::Template;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use palisade_core::auth::sessions::{self, LoginOutcome};
use palisade_core::auth::two_factor::challenge::{self, Factor};
use palisade_core::auth::{passkeys, password_reset, passwords, register, RequestMeta};
use palisade_core::{AppError, Services};
use serde::Deserialize;
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/login/2fa", post(sign_in::login_second_factor))
        .route("/login/passkey/start", post(sign_in::passkey_start))
        .route("/login/passkey/finish", post(sign_in::passkey_finish))
        .route(
            "/register",
            get(registration::register_page).post(registration::register_submit),
        )
        .route("/verify-email", get(registration::verify_email_page))
        .route(
            "/forgot-password",
            get(emailed_links::forgot_page).post(emailed_links::forgot_submit),
        )
        .route(
            "/reset-password",
            get(emailed_links::reset_page).post(emailed_links::reset_submit),
        )
        .route(
            "/accept-invite",
            get(emailed_links::invite_page).post(emailed_links::invite_submit),
        )
        .route("/logout", post(logout))
        .route("/session/refresh", post(refresh))
}

/// The second-step challenge of a password sign-in, kept from the script.
const MFA_COOKIE: &str = "palisade_mfa";
/// A password reset token from a mailed link.
const RESET_COOKIE: &str = "palisade_reset";
/// An invitation token from a mailed link.
const INVITE_COOKIE: &str = "palisade_invite";

/// Per-field problems as a form shows them.
#[derive(Debug, Default)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// Every problem of `field`, as one sentence list.
    pub fn of(&self, field: &str) -> String {
        self.0.get(field).map(|v| v.join(" ")).unwrap_or_default()
    }
}

/// The outcome of a refused form: the API's message, and its per-field problems.
#[derive(Debug, Default)]
pub struct Refusal {
    pub status: Option<StatusCode>,
    pub code: &'static str,
    pub message: String,
    pub fields: FieldErrors,
}

impl Refusal {
    fn of(e: AppError) -> Refusal {
        let c = classify(e);
        Refusal {
            status: Some(c.status),
            code: c.code,
            message: c.message,
            fields: FieldErrors(c.fields.unwrap_or_default()),
        }
    }

    fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }
}

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let name = cookies::name(name, secure);
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Strict; HttpOnly");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

fn with_cookie(mut resp: Response, c: Option<HeaderValue>) -> Response {
    if let Some(c) = c {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Where a signed-in person goes when no `next` says otherwise.
fn home_of(p: &palisade_core::auth::Principal) -> &'static str {
    if p.role == palisade_domain::Role::SuperAdmin && p.impersonator.is_none() {
        "/admin/tenants"
    } else {
        "/inbox"
    }
}

fn next_or_home(next: &str) -> String {
    safe_next(next).unwrap_or("/").to_owned()
}

/// A form that was not posted from one of our pages, or without its token.
pub(crate) fn forged() -> Response {
    app_error(AppError::Forbidden {
        code: palisade_core::error::code::CSRF_FAILED,
        message: "this form was not sent from a Palisade page; reload the page and try again"
            .into(),
    })
}

// ---- signing out, renewing ----

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

pub(crate) fn session_csrf_ok(s: &Services, viewer: &Viewer, sent: &str) -> bool {
    viewer
        .principal
        .session_id()
        .is_ok_and(|sid| sessions::csrf_token_valid(s, sid, sent))
}

async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    viewer: Option<Viewer>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let mut resp = see_other("/login?reason=signed_out");
    if let Some(viewer) = viewer {
        let Ok(Form(f)) = form else {
            return forged();
        };
        if !same_origin(&headers) || !session_csrf_ok(s, &viewer, &f.csrf) {
            return forged();
        }
        if let Err(e) = sessions::logout(s, &viewer.principal, &meta).await {
            return app_error(e);
        }
    }
    cookies::clear(resp.headers_mut(), secure);
    resp
}

/// Renews the access cookie (from `app.js`, a minute before it expires). Answers only the new
/// expiry: the tokens stay in HttpOnly cookies.
async fn refresh(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let sent = headers
        .get(cookies::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let csrf_cookie = cookies::get(&headers, &cookies::name(cookies::CSRF, secure)).unwrap_or("");
    if !same_origin(&headers) || sent.is_empty() || sent != csrf_cookie {
        return forged();
    }
    let Some(rt) = cookies::get(&headers, &cookies::name(cookies::REFRESH, secure)) else {
        return json_error(AppError::unauthenticated("signed out"));
    };
    match sessions::refresh(s, &meta, rt).await {
        Ok(t) => {
            let expires_at = s.now().unix_timestamp() + t.expires_in;
            let mut resp = Json(serde_json::json!({ "expires_at": expires_at })).into_response();
            resp.headers_mut().extend(with_cookies(s, &t));
            resp
        }
        Err(e) => {
            let mut resp = json_error(e);
            cookies::clear(resp.headers_mut(), secure);
            resp
        }
    }
}

/// The session layer's view of "signed in", for handlers that accept both.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        use axum::extract::FromRequestParts;
        Ok(
            <Viewer as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}
