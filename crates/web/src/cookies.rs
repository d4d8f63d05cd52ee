//! Browser credentials as cookies.
//!
//! Both tokens travel as `__Host-` cookies (HttpOnly, Secure, SameSite=Strict, Path=/), never in
//! storage that scripts can read. The CSRF token is the one cookie scripts may read: a browser
//! echoes it in `X-CSRF-Token` on unsafe requests, which a cross-site page cannot do.
//! `__Host-` requires Secure; when Secure is switched off (development over plain HTTP on a LAN
//! address) the cookies drop the prefix.

use axum::http::{header, HeaderMap, HeaderValue};
use palisade_core::auth::sessions::IssuedTokens;

pub const ACCESS: &str = "palisade_access";
pub const REFRESH: &str = "palisade_refresh";
pub const CSRF: &str = "palisade_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of cookie `name` in the request, if any.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

pub(crate) fn cookie(
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// Set-Cookie headers carrying a fresh token pair.
pub fn set_tokens(headers: &mut HeaderMap, t: &IssuedTokens, refresh_max_age: i64, secure: bool) {
    let all = [
        cookie(
            &name(ACCESS, secure),
            &t.access_token,
            t.expires_in,
            true,
            secure,
        ),
        cookie(
            &name(REFRESH, secure),
            &t.refresh_token,
            refresh_max_age,
            true,
            secure,
        ),
        cookie(
            &name(CSRF, secure),
            &t.csrf_token,
            refresh_max_age,
            false,
            secure,
        ),
    ];
    for c in all.into_iter().flatten() {
        headers.append(header::SET_COOKIE, c);
    }
}

/// Set-Cookie headers that delete the credentials.
pub fn clear(headers: &mut HeaderMap, secure: bool) {
    for base in [ACCESS, REFRESH, CSRF] {
        if let Some(c) = cookie(&name(base, secure), "", 0, base != CSRF, secure) {
            headers.append(header::SET_COOKIE, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-palisade_access=tok; b=2"),
        );
        assert_eq!(get(&h, "__Host-palisade_access"), Some("tok"));
        assert_eq!(get(&h, "palisade_access"), None);
    }
}
