//! Protection of the forms the console answers itself (the sign-in steps and sign-out).
//!
//! Two independent checks, both required:
//! 1. **Same origin.** A browser marks every request with `Sec-Fetch-Site` (and a POST with
//!    `Origin`); a form posted from another site is refused before anything is read. A request
//!    that carries neither is not from a browser's page and is refused too: these forms exist
//!    only for the console.
//! 2. **A form token** (double submit): each page that shows such a form sets a random
//!    `palisade_form` cookie (HttpOnly, SameSite=Strict) and repeats it in a hidden `csrf` field;
//!    the post must bring both, equal. Signed-in forms use the session's CSRF token instead.
//!
//! Everything else the console changes goes through the JSON API, which has its own CSRF check,
//! except the forms that must work without script (deals, templates, campaigns, the inbox's
//! few): [`check_change`] makes the API's checks for them (same origin, the session's CSRF
//! token, no read-only impersonation).

use super::auth_pages::{forged, session_csrf_ok};
use super::page::app_error;
use super::Viewer;
use crate::cookies;
use axum::extract::rejection::FormRejection;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use palisade_core::error::code;
use palisade_core::{AppError, Services};
use subtle::ConstantTimeEq;

pub const FORM_COOKIE: &str = "palisade_form";

/// Whether the request comes from a page of this very origin.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host)
}

/// The form token of this browser, and the cookie to set when it has none yet.
pub fn form_token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    let name = cookies::name(FORM_COOKIE, secure);
    if let Some(t) = cookies::get(headers, &name).filter(|t| t.len() == 64) {
        return (t.to_owned(), None);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut c = format!("{name}={token}; Path=/; Max-Age=86400; SameSite=Strict; HttpOnly");
    if secure {
        c.push_str("; Secure");
    }
    (token, HeaderValue::from_str(&c).ok())
}

/// Whether `sent` (the hidden field) matches the browser's form cookie.
pub fn form_token_valid(headers: &HeaderMap, secure: bool, sent: &str) -> bool {
    let name = cookies::name(FORM_COOKIE, secure);
    match cookies::get(headers, &name) {
        Some(t) if t.len() == 64 => bool::from(t.as_bytes().ct_eq(sent.as_bytes())),
        _ => false,
    }
}

/// A form the console answers itself, with its hidden `csrf` field.
pub(crate) trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// The body of a change the console answers itself, read and checked: the form parsed (`400`
/// page otherwise), then the API's checks for a change sent with the session cookie
/// ([`check_change`]), before the handler runs. Take it as the handler's last argument.
pub(crate) struct ChangeForm<T>(pub T);

impl<T> axum::extract::FromRequest<crate::AppState> for ChangeForm<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &crate::AppState,
    ) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let req = axum::extract::Request::from_parts(parts, body);
        let axum::extract::Form(f) = axum::extract::Form::<T>::from_request(req, state)
            .await
            .map_err(bad_form)?;
        check_change(&state.services, &viewer, &headers, f.csrf())?;
        Ok(ChangeForm(f))
    }
}

/// The body of a sign-in step (the forms that issue tokens: signing in, registering, a
/// forgotten or reset password, an invitation), read and checked before the handler: the form
/// parsed (`400` page otherwise), sent from a page of this origin, with this browser's form
/// token ([`form_token_valid`]).
pub(crate) struct SignInStep<T>(pub T);

impl<T> axum::extract::FromRequest<crate::AppState> for SignInStep<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        state: &crate::AppState,
    ) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let axum::extract::Form(f) = axum::extract::Form::<T>::from_request(req, state)
            .await
            .map_err(bad_form)?;
        sign_in_origin(&state.services, &headers, f.csrf())?;
        Ok(SignInStep(f))
    }
}

/// The checks of a sign-in step (a form, or the sign-in script's JSON with the token in a
/// header): a page of this origin, and `sent` equal to this browser's form token.
pub(crate) fn sign_in_origin(
    s: &Services,
    headers: &HeaderMap,
    sent: &str,
) -> Result<(), Response> {
    if same_origin(headers) && form_token_valid(headers, s.settings.cookie_secure, sent) {
        Ok(())
    } else {
        Err(forged())
    }
}

/// The API's checks for a change sent with the session cookie: a page of this origin, the
/// session's CSRF token, and (as the API's middleware refuses every unsafe method of one) no
/// read-only impersonation.
pub(crate) fn check_change(
    s: &Services,
    viewer: &Viewer,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(), Response> {
    if !same_origin(headers) || !session_csrf_ok(s, viewer, csrf) {
        return Err(forged());
    }
    if viewer
        .principal
        .impersonator
        .as_ref()
        .is_some_and(|i| !i.write)
    {
        return Err(app_error(AppError::Forbidden {
            code: code::IMPERSONATION_READ_ONLY,
            message: "this impersonation is read-only; start one with write access to change data"
                .into(),
        }));
    }
    Ok(())
}

pub(crate) fn bad_form(e: FormRejection) -> Response {
    app_error(AppError::BadRequest {
        code: code::INVALID_BODY,
        message: format!("This form could not be read: {}", e.body_text()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_pages_of_this_origin_may_post() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "a")])));
        assert!(!same_origin(&headers(&[])), "neither header: not a page");
    }

    #[test]
    fn the_form_token_must_match_its_cookie() {
        let (t, cookie) = form_token(&HeaderMap::new(), true);
        assert_eq!(t.len(), 64);
        assert!(cookie.is_some());
        let h = {
            let mut h = HeaderMap::new();
            let v = format!("__Host-palisade_form={t}");
            h.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
            h
        };
        assert!(form_token_valid(&h, true, &t));
        assert!(!form_token_valid(&h, true, "x"));
        assert!(!form_token_valid(&HeaderMap::new(), true, &t));
        let (again, none) = form_token(&h, true);
        assert_eq!(again, t);
        assert!(none.is_none());
    }

    /// A `data-api` form is sent by app.js; a form submitted before the module runs (it is
    /// deferred) falls back to the browser's own submission. Every form names its method, so
    /// that fallback is a POST to the page (refused) and never a GET that would put the fields,
    /// passwords included, into the address, the history and access logs.
    #[test]
    fn every_form_in_the_templates_names_its_method() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "html") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &mut files,
        );
        assert!(files.len() > 20, "the templates were found");
        let mut forms = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (at, _) in text.match_indices("<form") {
                let tag = &text[at..at + text[at..].find('>').expect("a closed tag")];
                forms += 1;
                let method = ["method=\"post\"", "method=\"get\""]
                    .iter()
                    .any(|m| tag.contains(m));
                assert!(method, "{}: a form without method: {tag}", file.display());
                if tag.contains("data-api") || tag.contains("password") {
                    assert!(tag.contains("method=\"post\""), "{}: {tag}", file.display());
                }
            }
        }
        assert!(forms > 40, "{forms} forms checked");
    }
}
