//! `/settings/profile` and `/settings/security`: the signed-in person's own account.
//!
//! Reading calls the core use cases the JSON routes call (`sessions::list`,
//! `login_history::list_own`, `two_factor::status`, `passkeys::list`); every change is a
//! `data-api` form against the account-security routes (`static/security.js` adds the steps a
//! plain form can't do: the QR code, the recovery codes shown once, WebAuthn registration).
//!
//! Both pages are where the session layer sends a restricted person: an expired password to
//! the profile, a missing second factor (the tenant requires one) to security; each page says
//! why. An impersonation may not see or change the person's credentials (the core refuses with
//! `impersonation_forbidden`): the security page answers `403` with that refusal inside the
//! usual frame, and the profile page shows no password form.

use super::page::{app_error, render, render_with, Chrome, Nav};
use super::Viewer;
use crate::error::classify;
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::get;
use axum::Router;
use palisade_core::auth::login_history::{self, LoginAttemptView, PageRequest};
use palisade_core::auth::passkeys::{self, PasskeyView};
use palisade_core::auth::restriction::Restriction;
use palisade_core::auth::session_view::SessionView;
use palisade_core::auth::sessions;
use palisade_core::auth::two_factor::{self, TwoFactorStatus};
use palisade_core::error::code;
use palisade_core::AppError;
use palisade_domain::{Permission, Role};
use uuid::Uuid;

/// Login history rows per page.
const HISTORY_PAGE: i64 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings",
            get(|| async { Redirect::to("/settings/profile") }),
        )
        // Where the new-device sign-in mail sends people (`login_history::SESSIONS_PAGE`); the
        // sessions are a section of the security page. Mails already sent keep working.
        .route(
            "/settings/sessions",
            get(|| async { Redirect::to("/settings/security#sessions") }),
        )
        .route("/settings/profile", get(profile))
        .route("/settings/security", get(security))
}

#[derive(Template)]
#[template(path = "settings/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    user_id: Uuid,
    name: String,
    email: String,
    role: &'static str,
    /// Admins rename through `PATCH /api/v1/users/{id}` (`users.manage`); others can't.
    can_rename: bool,
    /// The password expired: the person was sent here and must change it first.
    password_expired: bool,
    impersonated: bool,
}

async fn profile(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    render(&ProfilePage {
        chrome: Chrome::new(s, &viewer, "Profile", Nav::Settings),
        user_id: p.user_id.as_uuid(),
        name: p.name.clone(),
        email: p.email.clone(),
        role: p.role.as_str(),
        can_rename: p.require(Permission::UsersManage).is_ok() && p.role != Role::SuperAdmin,
        password_expired: p.password_change_only,
        impersonated: p.impersonator.is_some(),
    })
}

/// One row of the login history, with words for people instead of the API's codes.
struct Attempt {
    view: LoginAttemptView,
    result: &'static str,
    ok: bool,
    method: &'static str,
}

impl From<LoginAttemptView> for Attempt {
    fn from(view: LoginAttemptView) -> Self {
        use palisade_domain::login::{LoginMethod, LoginResult};
        let (result, ok) = match view.result {
            LoginResult::Success => ("Signed in", true),
            LoginResult::Failure => ("Wrong password or passkey", false),
            LoginResult::Locked => ("Refused: account locked", false),
            LoginResult::MfaFailure => ("Wrong second factor", false),
        };
        let method = match view.method {
            LoginMethod::Password => "Password",
            LoginMethod::Passkey => "Passkey",
            LoginMethod::Totp => "Authenticator code",
            LoginMethod::RecoveryCode => "Recovery code",
        };
        Attempt {
            view,
            result,
            ok,
            method,
        }
    }
}

#[derive(Template)]
#[template(path = "settings/security.html")]
struct SecurityPage {
    chrome: Chrome,
    /// The API's refusal (an impersonation): shown instead of the settings.
    refusal: Option<String>,
    /// The tenant requires a second factor and the person has none yet.
    must_enrol: bool,
    factors: TwoFactorStatus,
    sessions: Vec<SessionView>,
    passkeys: Vec<PasskeyView>,
    history: Vec<Attempt>,
    /// The cursor of this page of the history (none on the newest page).
    history_cursor: Option<Uuid>,
    history_next: Option<Uuid>,
}

/// `cursor=<uuid>` from the query string; anything else there is ignored, a bad cursor is a 400.
fn history_cursor(query: Option<&str>) -> Result<Option<Uuid>, AppError> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        if let Some(v) = pair.strip_prefix("cursor=") {
            return Uuid::parse_str(v)
                .map(Some)
                .map_err(|_| AppError::BadRequest {
                    code: code::INVALID_QUERY,
                    message: "cursor: not a login history cursor".into(),
                });
        }
    }
    Ok(None)
}

async fn security(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(query): RawQuery,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let chrome = Chrome::new(s, &viewer, "Security", Nav::Settings);
    let cursor = match history_cursor(query.as_deref()) {
        Ok(c) => c,
        Err(e) => return app_error(e),
    };
    let factors = match two_factor::status(s, p).await {
        Ok(f) => f,
        Err(e) => {
            let c = classify(e);
            if c.code != code::IMPERSONATION_FORBIDDEN {
                return super::page::error_page(c);
            }
            let page = SecurityPage {
                chrome,
                refusal: Some(c.message),
                must_enrol: false,
                factors: TwoFactorStatus {
                    totp: false,
                    passkeys: 0,
                    recovery_codes_left: 0,
                    required: false,
                },
                sessions: Vec::new(),
                passkeys: Vec::new(),
                history: Vec::new(),
                history_cursor: None,
                history_next: None,
            };
            return render_with(StatusCode::FORBIDDEN, &page);
        }
    };
    let sessions = match sessions::list(s, p).await {
        Ok(v) => v,
        Err(e) => return app_error(e),
    };
    let passkeys = match passkeys::list(s, p).await {
        Ok(v) => v,
        Err(e) => return app_error(e),
    };
    let history = match login_history::list_own(
        s,
        p,
        PageRequest {
            limit: Some(HISTORY_PAGE),
            cursor,
        },
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return app_error(e),
    };
    render(&SecurityPage {
        chrome,
        refusal: None,
        must_enrol: p.restrictions.contains(&Restriction::TwoFactorEnrollment),
        factors,
        sessions,
        passkeys,
        history: history.data.into_iter().map(Attempt::from).collect(),
        history_cursor: cursor,
        history_next: history.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_cursor_comes_from_the_query() {
        let id = Uuid::now_v7();
        assert_eq!(history_cursor(None).unwrap(), None);
        assert_eq!(history_cursor(Some("x=1")).unwrap(), None);
        assert_eq!(
            history_cursor(Some(&format!("a=b&cursor={id}"))).unwrap(),
            Some(id)
        );
        assert!(history_cursor(Some("cursor=nope")).is_err());
    }
}
