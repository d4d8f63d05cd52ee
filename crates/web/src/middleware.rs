//! Cross-cutting request handling: request ids, client address, security headers, CORS, timeouts,
//! and for the API: authentication, the overall rate limit and CSRF.

use crate::cookies;
use crate::error::ApiError;
use crate::{AppState, WebConfig};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use palisade_core::auth::{self, Principal};
use palisade_core::error::code;
use palisade_core::rate_limit::ApiKey;
use palisade_core::AppError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled (empty outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// The client's address: the peer, or what a trusted proxy says it forwarded.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// What authentication concluded about a request.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Anonymous,
    Authenticated {
        principal: Principal,
        via_cookie: bool,
    },
    Failed(AuthFailure),
}

/// A credential that did not authenticate, kept to answer only if a handler needs a principal.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    forbidden: bool,
    code: &'static str,
    message: String,
}

impl AuthFailure {
    pub fn to_error(&self) -> AppError {
        if self.forbidden {
            AppError::Forbidden {
                code: self.code,
                message: self.message.clone(),
            }
        } else {
            AppError::Unauthenticated {
                code: self.code,
                message: self.message.clone(),
            }
        }
    }
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| s.to_owned())
}

fn client_ip(req: &Request, web: &WebConfig) -> (Option<IpAddr>, bool) {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return (None, false);
    };
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(UNPARSEABLE));
    let resolved = resolve_client(peer, forwarded, &web.trusted_proxies);
    let https = resolved.via_trusted_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    (Some(resolved.client), https)
}

/// Stands for a header value that is not even text: it parses as no address.
const UNPARSEABLE: &str = "\u{0}";

/// Who the client is, as [`resolve_client`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedClient {
    /// In canonical form: an IPv4-mapped IPv6 address is its IPv4 address.
    pub client: IpAddr,
    /// Whether the TCP peer is a trusted proxy (so its `X-Forwarded-Proto` is believed).
    pub via_trusted_proxy: bool,
}

/// The client address of a request from `peer` carrying the `X-Forwarded-For` values
/// `forwarded` (in header order), with `trusted` the proxies whose word is believed.
///
/// Every address is first made canonical (`::ffff:a.b.c.d` is `a.b.c.d`), so a proxy, an
/// allow-list entry or a rate-limit budget is the same whichever way the address is spelled.
/// An untrusted peer is the client, whatever it forwards. From a trusted peer the chain is
/// walked right to left: each trusted hop vouches for the entry to its left, and the first
/// entry that is not a trusted proxy is the client. An entry that does not parse (or is not
/// text) ends the walk: the client is then the last trusted hop, the one that wrote that entry,
/// because nothing to the left of an entry we cannot read is vouched for by anyone we trust
/// (skipping it would let a client believe its own forged entry). A chain made only of trusted
/// proxies resolves to its leftmost one.
pub fn resolve_client<'a>(
    peer: IpAddr,
    forwarded: impl IntoIterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> ResolvedClient {
    use palisade_core::client_address::{canonical, net_contains};
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| net_contains(n, ip));
    let peer = canonical(peer);
    if !is_trusted(peer) {
        return ResolvedClient {
            client: peer,
            via_trusted_proxy: false,
        };
    }
    let entries: Vec<&str> = forwarded.into_iter().flat_map(|v| v.split(',')).collect();
    let mut last_trusted = peer;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>().map(canonical) else {
            break;
        };
        if !is_trusted(ip) {
            return ResolvedClient {
                client: ip,
                via_trusted_proxy: true,
            };
        }
        last_trusted = ip;
    }
    ResolvedClient {
        client: last_trusted,
        via_trusted_proxy: true,
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn security_headers(h: &mut HeaderMap, hsts: bool, no_store: bool) {
    let set = |h: &mut HeaderMap, k: HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if hsts {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    if no_store {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The outermost layer: request id, client address, span, security headers, and the request's
/// log line and metrics.
///
/// Every request writes one line when it is answered (`request`, at info; `slow request` at
/// warn past `PALISADE_SLOW_REQUEST_MS`) in the request's span, which carries the request id,
/// method and route template; the line adds the status, the duration in ms and the path. With
/// traces on, the same span is the trace's server span. Layers of
/// `Router::layer` run after routing, so the route template is known here.
async fn request_context(
    State(web): State<Arc<WebConfig>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let (ip, https) = client_ip(&req, &web);
    req.extensions_mut().insert(ClientIp(ip));
    // Everything but the console's static files (which carry no personal data) is private:
    // API answers, and pages (which hold CSRF and form tokens even before sign-in).
    let no_store = !req.uri().path().starts_with("/static/");
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = crate::metrics::route_label(matched.as_ref());
    let method = req.method().clone();
    // The raw path is not a field of the span: the span is exported as the trace's server
    // span (crates/palisade/src/telemetry.rs), and a path can hold ids or tokens. The log line
    // (an event, never exported) carries it.
    // A `Uri` clone shares its bytes: no copy of the path per request.
    let uri = req.uri().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    if web.traces {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
    }
    let started = std::time::Instant::now();
    let mut resp = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let status = resp.status();
    let elapsed = started.elapsed();
    let slow = elapsed >= web.slow_request;
    crate::metrics::record_request(&method, route, status, elapsed, slow);
    if web.traces {
        span.record("http.response.status_code", i64::from(status.as_u16()));
        // OpenTelemetry's rule for server spans: only a 5xx is the server's error.
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
    // Internal errors are also logged where they are rendered, with their cause.
    span.in_scope(|| {
        let ms = elapsed.as_millis() as u64;
        let status = status.as_u16();
        let path = uri.path();
        // Text lines show the span's fields as their prefix; JSON lines nest them under `span`,
        // so they also get the request id and route at the top level.
        match (slow, web.json_logs) {
            (true, true) => {
                tracing::warn!(status, ms, path, request_id = %id, route = %route, "slow request")
            }
            (true, false) => tracing::warn!(status, ms, path, "slow request"),
            (false, true) => {
                tracing::info!(status, ms, path, request_id = %id, route = %route, "request")
            }
            (false, false) => tracing::info!(status, ms, path, "request"),
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    security_headers(resp.headers_mut(), web.hsts || https, no_store);
    resp
}

async fn timeout(State(web): State<Arc<WebConfig>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(web.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => crate::error::render(
            StatusCode::REQUEST_TIMEOUT,
            code::REQUEST_TIMEOUT,
            "the request took too long and was abandoned".into(),
            None,
        ),
    }
}

/// Applies the outer layers to the application.
pub fn wrap(app: Router, state: AppState) -> Router {
    let mut app = app.layer(axum::middleware::from_fn_with_state(
        state.web.clone(),
        timeout,
    ));
    let origins: Vec<HeaderValue> = state
        .web
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if !origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PATCH,
                    Method::PUT,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static(cookies::CSRF_HEADER),
                ])
                .allow_credentials(true)
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    app.layer(axum::middleware::from_fn_with_state(
        state.web.clone(),
        request_context,
    ))
}

/// An access token (JWT) or, when it has the `pal_live_` prefix, an API key (never from a cookie).
async fn authenticate_token(
    state: &AppState,
    token: &str,
    via_cookie: bool,
    ip: Option<IpAddr>,
) -> Result<Principal, AppError> {
    if !via_cookie && token.starts_with(auth::api_keys::PREFIX) {
        return auth::authenticate_api_key(&state.services, token, ip).await;
    }
    auth::authenticate(&state.services, token).await
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates the API request (if it carries a credential), applies the overall rate limit
/// by principal or address, and checks CSRF for cookie-authenticated unsafe requests.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let s = &state.services;
    let secure = s.settings.cookie_secure;
    let (token, via_cookie) = match bearer(req.headers()) {
        Some(t) => (Some(t.to_owned()), false),
        None => (
            cookies::get(req.headers(), &cookies::name(cookies::ACCESS, secure)).map(str::to_owned),
            true,
        ),
    };
    let peer_ip = req.extensions().get::<ClientIp>().and_then(|c| c.0);
    let outcome = match token {
        None => AuthOutcome::Anonymous,
        Some(t) => match authenticate_token(&state, &t, via_cookie, peer_ip).await {
            Ok(principal) => AuthOutcome::Authenticated {
                principal,
                via_cookie,
            },
            Err(AppError::Forbidden { code, message }) => AuthOutcome::Failed(AuthFailure {
                forbidden: true,
                code,
                message,
            }),
            Err(AppError::Unauthenticated { code, message }) => AuthOutcome::Failed(AuthFailure {
                forbidden: false,
                code,
                message,
            }),
            Err(other) => return ApiError(other).into_response(),
        },
    };
    let ip = req.extensions().get::<ClientIp>().and_then(|c| c.0);
    let key = match &outcome {
        AuthOutcome::Authenticated { principal, .. } => Some(match principal.api_key() {
            Some(k) => ApiKey::User(k.id.as_uuid()),
            None => ApiKey::User(principal.user_id.as_uuid()),
        }),
        _ => ip.map(|ip| ApiKey::Ip(palisade_core::rate_limit::ClientKey::of(ip))),
    };
    if let Some(k) = key {
        if let Err(wait) = s.limits.api.check(&k).await {
            return ApiError(AppError::rate_limited("too many requests; slow down", wait))
                .into_response();
        }
    }
    if let AuthOutcome::Authenticated {
        principal,
        via_cookie: true,
    } = &outcome
    {
        let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if unsafe_method {
            let sent = req
                .headers()
                .get(cookies::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ok = principal
                .session_id()
                .is_ok_and(|sid| auth::sessions::csrf_token_valid(s, sid, sent));
            if !ok {
                return ApiError(AppError::Forbidden {
                    code: code::CSRF_FAILED,
                    message: "cookie-authenticated requests that change state need the X-CSRF-Token header".into(),
                })
                .into_response();
            }
        }
    }
    if let AuthOutcome::Authenticated { principal, .. } = &outcome {
        if let Some(imp) = &principal.impersonator {
            let unsafe_method =
                !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            if unsafe_method && !imp.write && req.uri().path() != "/api/v1/auth/logout" {
                return ApiError(AppError::Forbidden {
                    code: code::IMPERSONATION_READ_ONLY,
                    message: "this impersonation is read-only; start one with \"write\": true to change data".into(),
                })
                .into_response();
            }
            // Every request under impersonation is audited, reads included.
            let principal = principal.clone();
            let method = req.method().to_string();
            let path = req.uri().path().to_owned();
            let meta = palisade_core::auth::RequestMeta {
                ip: peer_ip,
                user_agent: req
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(|u| u.chars().take(512).collect()),
                request_id: current_request_id(),
            };
            req.extensions_mut().insert(outcome);
            let resp = next.run(req).await;
            let status = resp.status().as_u16();
            // An opened websocket records itself once it is authorised (routes/ws/socket.rs).
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                return resp;
            }
            if let Err(e) = palisade_core::platform::record_impersonated_request(
                s, &principal, &meta, &method, &path, status,
            )
            .await
            {
                tracing::error!(error = %e, "could not audit a request made under impersonation");
            }
            return resp;
        }
    }
    req.extensions_mut().insert(outcome);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn resolve(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        resolve_client(ip(peer), xff.iter().copied(), &nets(trusted)).client
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            resolve("198.51.100.1", &["203.0.113.9"], &["10.0.0.1/32"]),
            ip("198.51.100.1")
        );
        let r = resolve_client(ip("198.51.100.1"), [], &nets(&["10.0.0.1/32"]));
        assert!(!r.via_trusted_proxy);
    }

    #[test]
    fn the_walk_goes_right_to_left_through_trusted_hops() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(
            resolve("10.0.0.1", &["203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve("10.0.0.1", &["192.0.2.66, 203.0.113.9, 10.0.0.2"], &trusted),
            ip("203.0.113.9"),
            "a forged entry left of the client is not believed"
        );
        assert_eq!(
            resolve("10.0.0.1", &["192.0.2.66", "203.0.113.9"], &trusted),
            ip("203.0.113.9"),
            "several headers are one list"
        );
        assert_eq!(
            resolve("10.0.0.1", &["10.0.0.3, 10.0.0.2"], &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(resolve("10.0.0.1", &[], &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn an_entry_that_does_not_parse_ends_the_walk_at_the_last_trusted_hop() {
        let trusted = ["10.0.0.0/8"];
        // The forged 192.0.2.66 sits left of garbage the trusted proxy wrote: not believed.
        for garbage in [
            "unknown",
            "",
            "203.0.113.9:443",
            "[2001:db8::1]",
            "1.2.3",
            "\u{0}",
        ] {
            assert_eq!(
                resolve("10.0.0.1", &[&format!("192.0.2.66, {garbage}")], &trusted),
                ip("10.0.0.1"),
                "{garbage:?}"
            );
        }
        assert_eq!(
            resolve("10.0.0.1", &["192.0.2.66, bogus, 10.0.0.2"], &trusted),
            ip("10.0.0.2"),
            "the hop that wrote the unreadable entry is the client"
        );
        assert_eq!(
            resolve("10.0.0.1", &["192.0.2.66", "bogus"], &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve("10.0.0.1", &["bogus, 203.0.113.9"], &trusted),
            ip("203.0.113.9"),
            "garbage left of the client is never reached"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_everywhere() {
        // A mapped peer (a server listening on [::]) matches an IPv4 trusted range…
        assert_eq!(
            resolve("::ffff:10.0.0.1", &["203.0.113.9"], &["10.0.0.1/32"]),
            ip("203.0.113.9")
        );
        // …a mapped forwarded hop too, and the client comes out as IPv4.
        assert_eq!(
            resolve(
                "10.0.0.1",
                &["::ffff:203.0.113.9, ::ffff:10.0.0.2"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        assert_eq!(resolve("::ffff:198.51.100.1", &[], &[]), ip("198.51.100.1"));
        // A trusted range written in mapped form trusts the IPv4 peer.
        assert_eq!(
            resolve("10.0.0.1", &["203.0.113.9"], &["::ffff:10.0.0.0/104"]),
            ip("203.0.113.9")
        );
        assert_eq!(resolve("2001:db8::1", &[], &[]), ip("2001:db8::1"));
    }
}
