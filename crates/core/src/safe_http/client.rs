//! Resolve once, check every answer, connect only to the checked addresses.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap};
use reqwest::Method;

use super::ip::{canonical, is_forbidden};
use super::target::{TargetHost, TargetUrl};
use super::{OutboundError, OutboundPolicy, OutboundResponse};

/// At most this many checked addresses are handed to the connector.
const MAX_ADDRS: usize = 16;

/// Sent on every outgoing request.
pub const USER_AGENT: &str = concat!("Palisade/", env!("CARGO_PKG_VERSION"));

/// Request headers the caller may not set: the connection and framing are ours.
const RESERVED_HEADERS: [header::HeaderName; 7] = [
    header::HOST,
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Turns a host name into addresses. [`send`] uses [`SystemResolver`]; tests and a future
/// hickory-based resolver plug in through [`send_with_resolver`]. The answers are *not* trusted:
/// every one is checked before use.
pub trait HostResolver: Send + Sync {
    /// All addresses for `host`, with `port` filled in.
    fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
}

/// The operating system's resolver (`getaddrinfo` via `tokio::net::lookup_host`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Resolve `host` once and check every answer against `policy`.
///
/// One forbidden answer refuses the whole name (rather than filtering it out): a name that
/// resolves to both a public and an internal address is hostile or misconfigured, and filtering
/// would let an attacker who controls the record probe which internal answers exist.
pub async fn resolve_checked<R: HostResolver>(
    resolver: &R,
    host: &str,
    port: u16,
    policy: &OutboundPolicy,
) -> Result<Vec<SocketAddr>, OutboundError> {
    let answers = tokio::time::timeout(policy.connect_timeout, resolver.lookup(host, port))
        .await
        .map_err(|_| OutboundError::Timeout)?
        .map_err(|err| {
            tracing::debug!(target: "palisade::outbound", %host, error = %err, "DNS lookup failed");
            OutboundError::DnsFailure
        })?;
    let mut checked: Vec<SocketAddr> = Vec::new();
    for answer in answers {
        let ip = canonical(answer.ip());
        if !policy.allow_private_targets && is_forbidden(ip) {
            tracing::warn!(
                target: "palisade::outbound",
                %host, address = %ip, "refused: DNS answer in a forbidden range"
            );
            return Err(OutboundError::ForbiddenAddress);
        }
        let addr = SocketAddr::new(ip, port);
        if !checked.contains(&addr) {
            checked.push(addr);
        }
    }
    if checked.is_empty() {
        return Err(OutboundError::DnsFailure);
    }
    checked.truncate(MAX_ADDRS);
    Ok(checked)
}

/// The fallback resolver of every client we build: it refuses every name. The only name a client
/// can connect to is the one pinned with `resolve_to_addrs` (reqwest consults its overrides before
/// this resolver), so nothing unchecked is ever resolved, whatever reqwest or hyper may try.
struct RefuseAll;

impl reqwest::dns::Resolve for RefuseAll {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        tracing::warn!(
            target: "palisade::outbound",
            host = name.as_str(), "refused: unpinned name reached the resolver"
        );
        Box::pin(std::future::ready(Err(Box::new(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "outbound: unpinned name",
        )) as _)))
    }
}

/// Send one request under `policy`, resolving with the operating system's resolver.
///
/// The body is sent as given (empty means none). `Host`, `Connection`, `Content-Length`,
/// `Transfer-Encoding`, `TE`, `Upgrade` and `Proxy-Authorization` headers from the caller are
/// dropped. Redirects are returned, never followed. At most `policy.max_response_bytes` of the
/// response body are read; the rest is never read (the connection is dropped).
pub async fn send(
    policy: &OutboundPolicy,
    method: Method,
    target: &TargetUrl,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<OutboundResponse, OutboundError> {
    send_with_resolver(&SystemResolver, policy, method, target, headers, body).await
}

/// [`send`] with a chosen resolver.
pub async fn send_with_resolver<R: HostResolver>(
    resolver: &R,
    policy: &OutboundPolicy,
    method: Method,
    target: &TargetUrl,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<OutboundResponse, OutboundError> {
    let started = Instant::now();
    let span = request_span(&method, target);
    let mut headers = headers;
    propagate(&span, &mut headers);
    let outcome = traced(
        &span,
        tokio::time::timeout(
            policy.total_timeout,
            send_inner(resolver, policy, method, target, headers, body, started),
        ),
    )
    .await;
    if let Err(err) = &outcome {
        tracing::debug!(
            target: "palisade::outbound",
            target_url = %target.redacted(), error = err.code(), "outbound request failed"
        );
    }
    outcome
}

async fn send_inner<R: HostResolver>(
    resolver: &R,
    policy: &OutboundPolicy,
    method: Method,
    target: &TargetUrl,
    headers: HeaderMap,
    body: Vec<u8>,
    started: Instant,
) -> Result<OutboundResponse, OutboundError> {
    target.recheck(policy)?;
    if body.len() > policy.max_request_bytes {
        return Err(OutboundError::TooLarge);
    }
    let remaining = policy
        .total_timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    let client = build_client(resolver, policy, target, false, remaining).await?;
    execute(&client, policy, method, target, headers, body, started).await
}

/// A client that can reach only `target`'s checked addresses (resolved once, here).
async fn build_client<R: HostResolver>(
    resolver: &R,
    policy: &OutboundPolicy,
    target: &TargetUrl,
    keep_alive: bool,
    timeout: Duration,
) -> Result<reqwest::Client, OutboundError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .no_proxy()
        .dns_resolver(Arc::new(RefuseAll))
        .https_only(!policy.allow_private_targets)
        .referer(false)
        .pool_max_idle_per_host(usize::from(keep_alive))
        .connect_timeout(policy.connect_timeout)
        .user_agent(USER_AGENT);
    if let TargetHost::Domain(name) = target.host() {
        let addrs = resolve_checked(resolver, name, target.port(), policy).await?;
        builder = builder.resolve_to_addrs(name, &addrs);
    }
    // IP literals are connected to directly (hyper never resolves them); recheck() has
    // already checked the literal against the policy.
    builder.timeout(timeout).build().map_err(|err| {
        tracing::error!(target: "palisade::outbound", error = %err, "could not build HTTP client");
        OutboundError::Transport
    })
}

/// One target, resolved and checked once, for several requests in a row (the webhook worker's
/// deliveries to one endpoint in one round): the same guarantees as [`send`], without paying
/// for a new client (and TLS set-up) per request, and with the connection kept alive between
/// them. Hold it only briefly: the DNS answers it pinned are not looked at again.
pub struct PinnedClient {
    client: reqwest::Client,
    policy: OutboundPolicy,
    target: TargetUrl,
}

impl PinnedClient {
    /// Checks `target` under `policy` and pins its addresses (operating system resolver).
    pub async fn new(policy: &OutboundPolicy, target: &TargetUrl) -> Result<Self, OutboundError> {
        Self::with_resolver(&SystemResolver, policy, target).await
    }

    pub async fn with_resolver<R: HostResolver>(
        resolver: &R,
        policy: &OutboundPolicy,
        target: &TargetUrl,
    ) -> Result<Self, OutboundError> {
        target.recheck(policy)?;
        let client = tokio::time::timeout(
            policy.total_timeout,
            build_client(resolver, policy, target, true, policy.total_timeout),
        )
        .await
        .unwrap_or(Err(OutboundError::Timeout))?;
        Ok(PinnedClient {
            client,
            policy: policy.clone(),
            target: target.clone(),
        })
    }

    /// Sends one request to the pinned target, like [`send`].
    pub async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<OutboundResponse, OutboundError> {
        let started = Instant::now();
        if body.len() > self.policy.max_request_bytes {
            return Err(OutboundError::TooLarge);
        }
        let span = request_span(&method, &self.target);
        let mut headers = headers;
        propagate(&span, &mut headers);
        traced(
            &span,
            tokio::time::timeout(
                self.policy.total_timeout,
                execute(
                    &self.client,
                    &self.policy,
                    method,
                    &self.target,
                    headers,
                    body,
                    started,
                ),
            ),
        )
        .await
    }
}

async fn execute(
    client: &reqwest::Client,
    policy: &OutboundPolicy,
    method: Method,
    target: &TargetUrl,
    mut headers: HeaderMap,
    body: Vec<u8>,
    started: Instant,
) -> Result<OutboundResponse, OutboundError> {
    for name in &RESERVED_HEADERS {
        headers.remove(name);
    }
    let mut request = client
        .request(method, target.url().clone())
        .headers(headers);
    if !body.is_empty() {
        request = request.body(body);
    }
    let mut response = request.send().await.map_err(classify)?;

    let status = response.status();
    let headers = response.headers().clone();
    let limit = policy.max_response_bytes;
    let initial = response
        .content_length()
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(limit)
        .min(64 * 1024);
    let mut body = Vec::with_capacity(initial);
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    drop(response);

    Ok(OutboundResponse {
        status,
        headers,
        body_truncated: body,
        truncated,
        latency: started.elapsed(),
    })
}

/// The `http.client` span of one outgoing request: method, host and port, then the status or
/// the error code — never the path or query (a webhook URL may carry a secret). Debug level:
/// it exists only for traces (`PALISADE_OTLP_ENDPOINT`).
fn request_span(method: &Method, target: &TargetUrl) -> tracing::Span {
    span_for(method, target.url())
}

fn span_for(method: &Method, url: &reqwest::Url) -> tracing::Span {
    tracing::debug_span!(
        "http.client",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().unwrap_or_default(),
        http.response.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Sends a request of a client made for one third party (Meta's Graph API and media
/// downloads, Have I Been Pwned), which do not go through [`send`], in the same `http.client`
/// span: method, host and port, then the status or the error kind, never the path or query.
/// No `traceparent` is added: trace context is not given away to third parties.
pub async fn traced_send(builder: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    use tracing::Instrument;
    let (client, request) = builder.build_split();
    let request = request?;
    let span = span_for(request.method(), request.url());
    let result = client.execute(request).instrument(span.clone()).await;
    match &result {
        Ok(r) => {
            span.record("http.response.status_code", i64::from(r.status().as_u16()));
            if r.status().is_client_error() || r.status().is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "request"
            };
            span.record("error.type", kind);
            span.record("otel.status_code", "error");
        }
    }
    result
}

/// Adds the W3C `traceparent` of `span` to `headers`. Without traces the global propagator is
/// OpenTelemetry's no-op one (and the span has no trace context): nothing is added.
fn propagate(span: &tracing::Span, headers: &mut HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl opentelemetry::propagation::Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(key.as_bytes()),
            header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Runs one (timed) request in `span` and records how it ended.
async fn traced(
    span: &tracing::Span,
    request: impl Future<
        Output = Result<Result<OutboundResponse, OutboundError>, tokio::time::error::Elapsed>,
    >,
) -> Result<OutboundResponse, OutboundError> {
    use tracing::Instrument;
    let outcome = request
        .instrument(span.clone())
        .await
        .unwrap_or(Err(OutboundError::Timeout));
    match &outcome {
        Ok(r) => {
            span.record("http.response.status_code", i64::from(r.status.as_u16()));
            if r.status.is_server_error() || r.status.is_client_error() {
                span.record("otel.status_code", "error");
            }
        }
        Err(e) => {
            span.record("error.type", e.code());
            span.record("otel.status_code", "error");
        }
    }
    outcome
}

/// Map a reqwest error to what the caller may know. reqwest's own message carries the URL (and
/// so maybe secrets in the query) and low-level detail: it goes to the debug log only.
fn classify(err: reqwest::Error) -> OutboundError {
    let err = err.without_url();
    tracing::debug!(target: "palisade::outbound", error = %err, "transport error");
    if err.is_timeout() {
        OutboundError::Timeout
    } else if err.is_connect() {
        OutboundError::Connect
    } else {
        OutboundError::Transport
    }
}
