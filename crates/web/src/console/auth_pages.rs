//! The pages that get a person in: sign-in (password, then the second factor when asked, or a
//! passkey alone), registration, email verification, forgotten and reset passwords, accepting an
//! invitation, signing out.
//!
//! The steps that issue tokens are answered here, not by the JSON API from script: the console
//! calls the same `palisade_core` functions as the API routes (with the same rate limits) and
//! sets the tokens as HttpOnly cookies, so that no token ever reaches a script. One-time tokens
//! that arrive in a link (`/reset-password?token=…`, `/accept-invite?token=…`) are moved into a
//! short-lived HttpOnly cookie at once and the address bar is cleaned by a redirect.

use super::assets;
use super::forms::{form_token, form_token_valid, same_origin};
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
        .route("/login", get(login_page).post(login))
        .route("/login/2fa", post(login_second_factor))
        .route("/login/passkey/start", post(passkey_start))
        .route("/login/passkey/finish", post(passkey_finish))
        .route("/register", get(register_page).post(register_submit))
        .route("/verify-email", get(verify_email_page))
        .route("/forgot-password", get(forgot_page).post(forgot_submit))
        .route("/reset-password", get(reset_page).post(reset_submit))
        .route("/accept-invite", get(invite_page).post(invite_submit))
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

fn bad_form(e: FormRejection) -> Response {
    app_error(AppError::BadRequest {
        code: palisade_core::error::code::INVALID_BODY,
        message: format!("the form could not be read: {e}"),
    })
}

fn guard(s: &Services, headers: &HeaderMap, csrf: &str) -> Result<(), Response> {
    if same_origin(headers) && form_token_valid(headers, s.settings.cookie_secure, csrf) {
        Ok(())
    } else {
        Err(forged())
    }
}

// ---- sign-in ----

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    asset_version: &'static str,
    csrf: String,
    next: String,
    email: String,
    notice: Option<String>,
    error: Refusal,
}

#[derive(Template)]
#[template(path = "auth/login_2fa.html")]
struct SecondFactorPage {
    asset_version: &'static str,
    csrf: String,
    next: String,
    recovery: bool,
    error: Refusal,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    next: String,
    step: String,
    recovery: Option<String>,
    reason: String,
}

async fn login_page(
    State(state): State<AppState>,
    viewer: MaybeViewer,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let s = &state.services;
    if let Some(p) = &viewer.0 {
        let to = safe_next(&q.next).unwrap_or(home_of(p)).to_owned();
        return Redirect::to(&to).into_response();
    }
    let (csrf, set) = form_token(&headers, s.settings.cookie_secure);
    let has_challenge = cookies::get(
        &headers,
        &cookies::name(MFA_COOKIE, s.settings.cookie_secure),
    )
    .is_some();
    let resp = if q.step == "2fa" && has_challenge {
        render(&SecondFactorPage {
            asset_version: assets::version(),
            csrf,
            next: q.next,
            recovery: q.recovery.is_some(),
            error: Refusal::default(),
        })
    } else {
        let notice = viewer.1.or_else(|| match q.reason.as_str() {
            "expired" => Some("Your sign-in step took too long; start again.".to_owned()),
            "reset" => Some("Your password was changed. Sign in with the new one.".to_owned()),
            "signed_out" => Some("You are signed out.".to_owned()),
            _ => None,
        });
        render(&LoginPage {
            asset_version: assets::version(),
            csrf,
            next: q.next,
            email: String::new(),
            notice,
            error: Refusal::default(),
        })
    };
    with_cookie(resp, set)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = guard(s, &headers, &f.csrf) {
        return r;
    }
    let result = match login_limit(s, &meta, &f.email).await {
        Ok(()) => sessions::login(s, &meta, &f.email, &f.password).await,
        Err(e) => Err(e.0),
    };
    match result {
        Ok(LoginOutcome::SignedIn(t)) => {
            let mut resp = see_other(&next_or_home(&f.next));
            resp.headers_mut().extend(with_cookies(s, &t));
            resp
        }
        Ok(LoginOutcome::MfaRequired(c)) => {
            let to = format!("/login?step=2fa&next={}", url_encode(&f.next));
            with_cookie(
                see_other(&to),
                cookie(
                    MFA_COOKIE,
                    &c.mfa_token,
                    c.expires_in,
                    s.settings.cookie_secure,
                ),
            )
        }
        Err(e) => {
            let error = Refusal::of(e);
            render_with(
                error.status(),
                &LoginPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    next: f.next,
                    email: f.email,
                    notice: None,
                    error,
                },
            )
        }
    }
}

#[derive(Deserialize)]
struct SecondFactorForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

async fn login_second_factor(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<SecondFactorForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = guard(s, &headers, &f.csrf) {
        return r;
    }
    let Some(token) = cookies::get(&headers, &cookies::name(MFA_COOKIE, secure)) else {
        return see_other("/login?reason=expired");
    };
    let recovery = !f.recovery_code.trim().is_empty();
    let factor = if recovery {
        Factor::RecoveryCode(f.recovery_code.trim())
    } else {
        Factor::Totp(f.code.trim())
    };
    let result = match ip_limit(&s.limits.login, &meta).await {
        Ok(()) => challenge::complete(s, &meta, token, factor).await,
        Err(e) => Err(e.0),
    };
    match result {
        Ok(t) => {
            let mut resp = see_other(&next_or_home(&f.next));
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, cookie(MFA_COOKIE, "", 0, secure))
        }
        Err(e) => {
            let error = Refusal::of(e);
            if error.code == palisade_core::error::code::INVALID_MFA_TOKEN {
                return with_cookie(
                    see_other("/login?reason=expired"),
                    cookie(MFA_COOKIE, "", 0, secure),
                );
            }
            render_with(
                error.status(),
                &SecondFactorPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    next: f.next,
                    recovery,
                    error,
                },
            )
        }
    }
}

/// A JSON answer for the sign-in script: `{"error": {"message": …}}` on failure.
fn json_error(e: AppError) -> Response {
    let c = classify(e);
    (
        c.status,
        Json(serde_json::json!({"error": {"code": c.code, "message": c.message}})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct PasskeyStart {
    /// The second step of a password sign-in (the challenge is in its cookie) rather than a
    /// passwordless sign-in.
    #[serde(default)]
    second_factor: bool,
}

/// Guards the sign-in script's JSON posts: same origin, and the form token in `X-CSRF-Token`.
fn guard_json(s: &Services, headers: &HeaderMap) -> Result<(), Response> {
    let sent = headers
        .get(cookies::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    guard(s, headers, sent)
}

async fn passkey_start(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Json<PasskeyStart>, JsonRejection>,
) -> Response {
    let s = &state.services;
    if let Err(r) = guard_json(s, &headers) {
        return r;
    }
    let Ok(Json(req)) = body else {
        return json_error(AppError::BadRequest {
            code: palisade_core::error::code::INVALID_BODY,
            message: "send {\"second_factor\": true|false}".into(),
        });
    };
    if let Err(e) = ip_limit(&s.limits.login, &meta).await {
        return json_error(e.0);
    }
    let mfa = if req.second_factor {
        match cookies::get(
            &headers,
            &cookies::name(MFA_COOKIE, s.settings.cookie_secure),
        ) {
            Some(t) => Some(t.to_owned()),
            None => {
                return json_error(AppError::Unauthenticated {
                    code: palisade_core::error::code::INVALID_MFA_TOKEN,
                    message: "your sign-in step took too long; start again".into(),
                })
            }
        }
    } else {
        None
    };
    match passkeys::start_sign_in(s, &meta, mfa.as_deref()).await {
        Ok(c) => Json(serde_json::json!({
            "challenge_id": c.challenge_id.as_uuid(),
            "options": c.options,
        }))
        .into_response(),
        Err(e) => json_error(e),
    }
}

#[derive(Deserialize)]
struct PasskeyFinish {
    challenge_id: uuid::Uuid,
    credential: serde_json::Value,
    #[serde(default)]
    next: String,
}

async fn passkey_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Json<PasskeyFinish>, JsonRejection>,
) -> Response {
    let s = &state.services;
    if let Err(r) = guard_json(s, &headers) {
        return r;
    }
    let Ok(Json(req)) = body else {
        return json_error(AppError::BadRequest {
            code: palisade_core::error::code::INVALID_BODY,
            message: "send {\"challenge_id\": …, \"credential\": …}".into(),
        });
    };
    if let Err(e) = ip_limit(&s.limits.login, &meta).await {
        return json_error(e.0);
    }
    match passkeys::finish_sign_in(s, &meta, req.challenge_id, req.credential).await {
        Ok(t) => {
            let mut resp =
                Json(serde_json::json!({"redirect": next_or_home(&req.next)})).into_response();
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, cookie(MFA_COOKIE, "", 0, s.settings.cookie_secure))
        }
        Err(e) => json_error(e),
    }
}

// ---- registration and verification ----

#[derive(Template)]
#[template(path = "auth/register.html")]
struct RegisterPage {
    asset_version: &'static str,
    csrf: String,
    tenant_name: String,
    name: String,
    email: String,
    error: Refusal,
}

async fn register_page(
    State(state): State<AppState>,
    viewer: MaybeViewer,
    headers: HeaderMap,
) -> Response {
    if let Some(p) = &viewer.0 {
        return Redirect::to(home_of(p)).into_response();
    }
    let (csrf, set) = form_token(&headers, state.services.settings.cookie_secure);
    with_cookie(
        render(&RegisterPage {
            asset_version: assets::version(),
            csrf,
            tenant_name: String::new(),
            name: String::new(),
            email: String::new(),
            error: Refusal::default(),
        }),
        set,
    )
}

#[derive(Deserialize)]
struct RegisterForm {
    tenant_name: String,
    name: String,
    email: String,
    password: String,
    csrf: String,
}

async fn register_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = guard(s, &headers, &f.csrf) {
        return r;
    }
    let result = match ip_limit(&s.limits.register, &meta).await {
        Ok(()) => {
            register::register(s, &meta, &f.tenant_name, &f.name, &f.email, &f.password).await
        }
        Err(e) => Err(e.0),
    };
    match result {
        Ok(r) => {
            // Registration mailed a code: the next step is entering it (skippable unless
            // verification is required).
            let mut resp = see_other("/verify-email");
            resp.headers_mut().extend(with_cookies(s, &r.tokens));
            resp
        }
        Err(e) => {
            let error = Refusal::of(e);
            render_with(
                error.status(),
                &RegisterPage {
                    asset_version: assets::version(),
                    csrf: f.csrf,
                    tenant_name: f.tenant_name,
                    name: f.name,
                    email: f.email,
                    error,
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "auth/verify_email.html")]
struct VerifyEmailPage {
    chrome: Chrome,
    verified: bool,
    /// `PALISADE_EMAIL_VERIFICATION=required`: no way around it.
    required: bool,
}

async fn verify_email_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let verified = viewer.principal.user.email_verified;
    let required = state.services.settings.email_verification
        == palisade_core::settings::EmailVerification::Required;
    let chrome = Chrome::new(&state.services, &viewer, "Verify your email", Nav::None);
    render(&VerifyEmailPage {
        chrome,
        verified,
        required,
    })
}

// ---- forgotten and reset passwords ----

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    asset_version: &'static str,
    csrf: String,
    sent: bool,
    error: Refusal,
}

async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, set) = form_token(&headers, state.services.settings.cookie_secure);
    with_cookie(
        render(&ForgotPage {
            asset_version: assets::version(),
            csrf,
            sent: false,
            error: Refusal::default(),
        }),
        set,
    )
}

#[derive(Deserialize)]
struct ForgotForm {
    email: String,
    csrf: String,
}

async fn forgot_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = guard(s, &headers, &f.csrf) {
        return r;
    }
    let limited = per_address(
        &s.limits.password_forgot,
        &meta,
        "too many password reset requests from your address; try again later",
    )
    .await;
    let (sent, error) = match limited {
        Ok(()) => {
            password_reset::forgot(s, &meta, &f.email);
            (true, Refusal::default())
        }
        Err(e) => (false, Refusal::of(e.0)),
    };
    render_with(
        error.status(),
        &ForgotPage {
            asset_version: assets::version(),
            csrf: f.csrf,
            sent,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: Option<String>,
}

/// Moves a one-time token from the link into a cookie and cleans the address bar.
fn stash_token(s: &Services, path: &str, cookie_name: &str, token: &str) -> Response {
    // 30 minutes: a reset token's lifetime; an invitation lives longer, but the page does not
    // need to stay open that long.
    with_cookie(
        see_other(path),
        cookie(cookie_name, token, 30 * 60, s.settings.cookie_secure),
    )
}

fn stashed<'a>(s: &Services, headers: &'a HeaderMap, cookie_name: &str) -> Option<&'a str> {
    cookies::get(
        headers,
        &cookies::name(cookie_name, s.settings.cookie_secure),
    )
    .filter(|t| !t.is_empty())
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    asset_version: &'static str,
    csrf: String,
    has_token: bool,
    error: Refusal,
}

#[derive(Template)]
#[template(path = "auth/accept_invite.html")]
struct InvitePage {
    asset_version: &'static str,
    csrf: String,
    has_token: bool,
    error: Refusal,
}

/// The two pages that set a password with a mailed link's one-time token: a password reset
/// and an invitation. They share their steps (the link's token moves into a cookie, the form
/// posts a new password with it) and differ in their address, cookie, template and in what the
/// token does, which stays in each submit handler.
#[derive(Clone, Copy)]
enum TokenPage {
    Reset,
    Invite,
}

impl TokenPage {
    fn path(self) -> &'static str {
        match self {
            TokenPage::Reset => "/reset-password",
            TokenPage::Invite => "/accept-invite",
        }
    }

    fn cookie(self) -> &'static str {
        match self {
            TokenPage::Reset => RESET_COOKIE,
            TokenPage::Invite => INVITE_COOKIE,
        }
    }

    fn render(self, status: StatusCode, csrf: String, has_token: bool, error: Refusal) -> Response {
        let asset_version = assets::version();
        match self {
            TokenPage::Reset => render_with(
                status,
                &ResetPage {
                    asset_version,
                    csrf,
                    has_token,
                    error,
                },
            ),
            TokenPage::Invite => render_with(
                status,
                &InvitePage {
                    asset_version,
                    csrf,
                    has_token,
                    error,
                },
            ),
        }
    }

    /// The page: a link's token is stashed (and the address bar cleaned), else the form.
    fn show(self, s: &Services, headers: &HeaderMap, q: TokenQuery) -> Response {
        if let Some(t) = q.token.filter(|t| !t.is_empty() && t.len() <= 128) {
            return stash_token(s, self.path(), self.cookie(), &t);
        }
        let (csrf, set) = form_token(headers, s.settings.cookie_secure);
        let has_token = stashed(s, headers, self.cookie()).is_some();
        with_cookie(
            self.render(StatusCode::OK, csrf, has_token, Refusal::default()),
            set,
        )
    }

    /// The checks before a posted password is tried: the form, its CSRF token, the stashed
    /// token (without one, back to the page) and the sign-in limit per address.
    async fn posted<'h>(
        self,
        s: &Services,
        meta: &RequestMeta,
        headers: &'h HeaderMap,
        form: Result<Form<NewPasswordForm>, FormRejection>,
    ) -> Result<(NewPasswordForm, &'h str), Response> {
        let Form(f) = form.map_err(bad_form)?;
        guard(s, headers, &f.csrf)?;
        let token = stashed(s, headers, self.cookie()).ok_or_else(|| see_other(self.path()))?;
        if let Err(e) = ip_limit(&s.limits.login, meta).await {
            return Err(self.refused(f.csrf, Refusal::of(e.0)));
        }
        Ok((f, token))
    }

    /// The form again after a refusal; a refused token (`400`) leaves only the page's advice.
    fn refused(self, csrf: String, error: Refusal) -> Response {
        let invalid = error.status() == StatusCode::BAD_REQUEST;
        self.render(error.status(), csrf, !invalid, error)
    }

    fn clear_cookie(self, s: &Services) -> Option<HeaderValue> {
        cookie(self.cookie(), "", 0, s.settings.cookie_secure)
    }
}

async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    TokenPage::Reset.show(&state.services, &headers, q)
}

#[derive(Deserialize)]
struct NewPasswordForm {
    new_password: String,
    csrf: String,
}

async fn reset_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<NewPasswordForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let page = TokenPage::Reset;
    let (f, token) = match page.posted(s, &meta, &headers, form).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    match password_reset::reset(s, &meta, token, &f.new_password).await {
        Ok(_) => with_cookie(see_other("/login?reason=reset"), page.clear_cookie(s)),
        Err(e) => {
            let error = Refusal::of(e);
            let invalid = error.status() == StatusCode::BAD_REQUEST;
            let resp = page.refused(f.csrf, error);
            if invalid {
                with_cookie(resp, page.clear_cookie(s))
            } else {
                resp
            }
        }
    }
}

// ---- invitations ----

async fn invite_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    TokenPage::Invite.show(&state.services, &headers, q)
}

async fn invite_submit(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<NewPasswordForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let page = TokenPage::Invite;
    let (f, token) = match page.posted(s, &meta, &headers, form).await {
        Ok(posted) => posted,
        Err(r) => return r,
    };
    match passwords::accept_invite(s, &meta, token, &f.new_password).await {
        Ok(t) => {
            let mut resp = see_other("/inbox");
            resp.headers_mut().extend(with_cookies(s, &t));
            with_cookie(resp, page.clear_cookie(s))
        }
        Err(e) => {
            let mut error = Refusal::of(e);
            // The API names the field `password`; this form calls it `new_password`.
            if let Some(v) = error.fields.0.remove("password") {
                error.fields.0.insert("new_password".into(), v);
            }
            page.refused(f.csrf, error)
        }
    }
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
