//! The console's static files (CSS, a few hand-written JavaScript modules, the icon), compiled
//! into the binary. Pages link them as `/static/<name>?v=<version>`; the version is a hash of
//! every file, so a new build is never served from a stale cache, and a versioned URL may be
//! cached for a year.

use crate::AppState;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// Every static file: name, content type, bytes. Add a file here and under `crates/web/static/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/login.js"),
    ),
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/webauthn.js"),
    ),
    (
        "inbox.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/inbox.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/live.js"),
    ),
    (
        "contacts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/contacts.js"),
    ),
    (
        "deals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/deals.js"),
    ),
    (
        "pipelines.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/pipelines.js"),
    ),
    (
        "notifications.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/notifications.js"),
    ),
    (
        "security.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/security.js"),
    ),
    (
        "integrations.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/integrations.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../static/icon.svg"),
    ),
];

/// A short hash of every static file (stable for a build).
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        // SipHash with fixed keys: the same bytes give the same version on every node.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (name, _, bytes) in FILES {
            name.hash(&mut h);
            bytes.hash(&mut h);
        }
        format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(serve))
}

async fn serve(Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return super::page::not_found(&format!("/static/{name}"));
    };
    let versioned = q.as_deref() == Some(&format!("v={}", version()));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = (StatusCode::OK, *bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Total bytes of the CSS and JavaScript a page may load (the 150 KB budget).
pub fn script_and_style_bytes() -> usize {
    FILES
        .iter()
        .filter(|(n, _, _)| n.ends_with(".js") || n.ends_with(".css"))
        .map(|(_, _, b)| b.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_script_and_style_together_stay_under_150_kb() {
        assert!(
            script_and_style_bytes() <= 150 * 1024,
            "{} bytes",
            script_and_style_bytes()
        );
    }
}
