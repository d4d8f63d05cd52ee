//! Who is looking at a page: the API's session cookies, resolved once per console request.
//!
//! The access cookie is checked exactly as the API checks it (`auth::authenticate`: signature,
//! expiry, revocation, suspension). When it has expired and the refresh cookie is still good,
//! the session is renewed here (rotation, reuse detection: `sessions::refresh`) and the new
//! cookies go out with the page, so a tab opened after a night away does not bounce to the
//! sign-in page. Pages that are open renew their tokens from script before they expire
//! (`static/app.js`), so this path is rare and races between tabs are rarer still.
//!
//! A request to a console page counts toward the same overall rate limit as API requests, by
//! principal or by address, and under impersonation every page is audited like an API request.

use crate::cookies;
use crate::error::classify;
use crate::extract::request_meta;
use crate::middleware::ClientIp;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use palisade_core::auth::restriction::Restriction;
use palisade_core::auth::{self, sessions, Principal};
use palisade_core::rate_limit::{ApiKey, ClientKey};
use palisade_core::AppError;

/// What [`resolve`] found, for the extractors below.
#[derive(Clone)]
pub struct SessionState {
    pub principal: Option<Principal>,
    /// Unix seconds at which the access cookie expires (for the page's renewal timer).
    pub expires_at: Option<i64>,
    /// Why the visitor was signed out, when they were (a suspended tenant, a revoked session).
    pub notice: Option<String>,
    /// The reason an operator gave when starting the impersonation this browser is under (for
    /// the banner; see [`super::ops::impersonation`]).
    pub impersonation_reason: Option<String>,
}

/// The signed-in person behind a page. Without one, the page answers with a redirect to
/// `/login?next=…`; a person who must first verify their address, enrol a second factor or
/// change an expired password is sent to the page where they can.
pub struct Viewer {
    pub principal: Principal,
    pub expires_at: Option<i64>,
    /// Under an impersonation started from the console: the operator's reason.
    pub impersonation_reason: Option<String>,
}

/// The viewer if someone is signed in (for pages anyone may see: sign-in, registration, …).
pub struct MaybeViewer(pub Option<Principal>, pub Option<String>);

/// The page a restricted principal may still use, if `path` is not one of them.
fn restricted_home(p: &Principal, path: &str) -> Option<&'static str> {
    let open = |home: &'static str| (!path.starts_with(home)).then_some(home);
    if p.restrictions.contains(&Restriction::EmailUnverified) {
        return open("/verify-email");
    }
    if p.restrictions.contains(&Restriction::TwoFactorEnrollment) {
        return open("/settings/security");
    }
    if p.password_change_only {
        return open("/settings/profile");
    }
    None
}

/// `/login?next=<this page>` (only a same-site path ever goes into `next`).
pub fn login_redirect(parts_path_and_query: &str) -> Response {
    let next = safe_next(parts_path_and_query).unwrap_or("/inbox");
    let q = url_encode(next);
    Redirect::to(&format!("/login?next={q}")).into_response()
}

/// `next` if it is a path on this site (not `//host`, not a scheme, no backslash trickery).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 512;
    ok.then_some(next)
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let state = parts.extensions.get::<SessionState>().cloned();
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        match state {
            Some(SessionState {
                principal: Some(principal),
                expires_at,
                impersonation_reason,
                ..
            }) => {
                if let Some(home) = restricted_home(&principal, parts.uri.path()) {
                    return Err(Redirect::to(home).into_response());
                }
                Ok(Viewer {
                    impersonation_reason: impersonation_reason
                        .filter(|_| principal.impersonator.is_some()),
                    principal,
                    expires_at,
                })
            }
            _ => Err(login_redirect(&here)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeViewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<SessionState>() {
            Some(s) => MaybeViewer(s.principal.clone(), s.notice.clone()),
            None => MaybeViewer(None, None),
        })
    }
}

/// The expiry (`exp`, Unix seconds) of a JWT that `auth::authenticate` has already verified.
fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// The frame of an error page outside the session layer (the router's 404): the access cookie,
/// checked as [`resolve`] checks it but never renewed, if it is an impersonation's.
pub async fn error_frame_of(state: &AppState, headers: &HeaderMap) -> Option<super::Chrome> {
    let s = &state.services;
    let token = cookies::get(
        headers,
        &cookies::name(cookies::ACCESS, s.settings.cookie_secure),
    )?;
    let principal = auth::authenticate(s, token).await.ok()?;
    let viewer = Viewer {
        principal,
        expires_at: token_expiry(token),
        impersonation_reason: super::ops::impersonation::reason(headers, s.settings.cookie_secure),
    };
    super::page::error_frame(s, &viewer)
}

/// The console's session layer (see the module docs).
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let (mut parts, body) = req.into_parts();
    let meta = request_meta(&parts);
    let access = cookies::get(&parts.headers, &cookies::name(cookies::ACCESS, secure));
    let mut refresh = cookies::get(&parts.headers, &cookies::name(cookies::REFRESH, secure));
    // An impersonation started in the console keeps the operator's own session aside; once the
    // impersonation's token is gone (expired, revoked), that session comes back.
    let operator = super::ops::impersonation::stashed_refresh(&parts.headers, secure)
        .filter(|_| refresh.is_none());
    let restoring_operator = operator.is_some();
    if restoring_operator {
        refresh = operator;
    }
    let mut set_cookies: Option<HeaderMap> = None;
    let mut session = SessionState {
        principal: None,
        expires_at: None,
        notice: None,
        impersonation_reason: super::ops::impersonation::reason(&parts.headers, secure),
    };
    let mut failure: Option<AppError> = None;
    if let Some(token) = access {
        match auth::authenticate(s, token).await {
            Ok(p) => {
                session.expires_at = token_expiry(token);
                session.principal = Some(p);
            }
            Err(e) => failure = Some(e),
        }
    }
    // Page loads renew an expired access token; the unsafe requests the console answers itself
    // (sign-in steps, sign-out) never do, so a cross-site form can't make us rotate tokens.
    let renewable = matches!(parts.method, Method::GET | Method::HEAD);
    if session.principal.is_none() && renewable {
        if let Some(rt) = refresh {
            match sessions::refresh(s, &meta, rt).await {
                Ok(t) => match auth::authenticate(s, &t.access_token).await {
                    Ok(p) => {
                        session.expires_at = token_expiry(&t.access_token);
                        session.principal = Some(p);
                        let mut h = crate::routes::auth::with_cookies(s, &t);
                        if restoring_operator {
                            super::ops::impersonation::clear_stash(&mut h, secure);
                        }
                        set_cookies = Some(h);
                        failure = None;
                    }
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e),
            }
        }
    }
    if let Some(e) = failure.filter(|_| session.principal.is_none()) {
        let c = classify(e);
        if c.status.is_server_error() {
            return crate::console::page::error_page(c).into_response();
        }
        // A suspended tenant or a revoked session: say why on the sign-in page. An expired
        // token with nothing to renew it is just "signed out".
        if c.status == axum::http::StatusCode::FORBIDDEN {
            session.notice = Some(c.message);
        }
        let mut h = HeaderMap::new();
        cookies::clear(&mut h, secure);
        if restoring_operator && renewable {
            super::ops::impersonation::clear_stash(&mut h, secure);
        }
        set_cookies = Some(h);
    }
    // The same overall budget as the API, by principal or by address.
    let ip = parts.extensions.get::<ClientIp>().and_then(|c| c.0);
    let key = match &session.principal {
        Some(p) => Some(ApiKey::User(p.user_id.as_uuid())),
        None => ip.map(|ip| ApiKey::Ip(ClientKey::of(ip))),
    };
    let impersonated = session
        .principal
        .clone()
        .filter(|p| p.impersonator.is_some());
    // Error pages show the impersonation banner too.
    let error_frame = impersonated.clone().and_then(|principal| {
        super::page::error_frame(
            s,
            &Viewer {
                principal,
                expires_at: session.expires_at,
                impersonation_reason: session.impersonation_reason.clone(),
            },
        )
    });
    if let Some(k) = key {
        if let Err(wait) = s.limits.api.check(&k).await {
            let c = classify(AppError::rate_limited("too many requests; slow down", wait));
            return super::page::error_page_in(error_frame, c);
        }
    }
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    parts.extensions.insert(session);
    req = Request::from_parts(parts, body);
    let mut resp = super::page::with_error_frame(error_frame, next.run(req)).await;
    if let Some(h) = set_cookies {
        for v in h.get_all(axum::http::header::SET_COOKIE) {
            resp.headers_mut()
                .append(axum::http::header::SET_COOKIE, v.clone());
        }
    }
    if let Some(p) = impersonated {
        let status = resp.status().as_u16();
        if let Err(e) = palisade_core::platform::record_impersonated_request(
            s, &p, &meta, &method, &path, status,
        )
        .await
        {
            tracing::error!(error = %e, "could not audit a page viewed under impersonation");
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_path_on_this_site() {
        assert_eq!(safe_next("/inbox?status=open"), Some("/inbox?status=open"));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_next_parameter_is_encoded() {
        assert_eq!(url_encode("/inbox?a=b&c"), "/inbox%3Fa%3Db%26c");
    }
}
