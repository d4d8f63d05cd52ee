//! SSRF-proof outgoing HTTP: the one way Palisade talks to URLs that tenants supply
//! (webhook endpoints now, media fetches later).
//!
//! # Threat
//!
//! A tenant admin (or anyone who steals such a session or API key) enters a URL, and the server
//! sends requests to it from inside our network. Without care that reaches what only the server
//! can reach: cloud metadata (`169.254.169.254`, `metadata.google.internal`) and its credentials,
//! the database, Redis, admin ports on loopback, other pods. Known tricks: IP literals in legacy
//! notations (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), IPv6 forms that embed IPv4
//! (`::ffff:127.0.0.1`, NAT64, 6to4, Teredo), names that resolve to internal addresses
//! (`127.0.0.1.nip.io`), DNS rebinding (the name resolves to a public address when checked and to
//! an internal one when connected, with TTL 0), a public endpoint that answers `302` to the
//! metadata service (frappe/press #7459, CVAT #6362), parser differentials (backslashes,
//! whitespace, userinfo, percent-encoded hosts), and reading internal data back through error
//! messages or echoed response bodies.
//!
//! # Invariants
//!
//! 1. Only a [`TargetUrl`] can be sent, and `TargetUrl::parse` refuses, under the strict
//!    (production) policy: any scheme but lowercase `https`; userinfo (even empty); any port not
//!    in [`OutboundPolicy::allowed_ports`] (default 443 only); whitespace, control characters,
//!    non-ASCII, backslashes and `%` in the host; hosts ending in a dot or a numeric label;
//!    single-label names; `localhost`, `*.localhost`, `*.internal` (so
//!    `metadata.google.internal`), `*.local` and other reserved or internal suffixes; and IP
//!    literals in a forbidden range ([`ip::is_forbidden`]), after the `url` crate has folded every
//!    legacy IPv4 notation into a plain address.
//! 2. [`send`] checks the target again against the policy *it* is given, so a target parsed
//!    under the development policy cannot be sent under the strict one.
//! 3. A name is resolved exactly once, and every answer is checked; a single forbidden answer
//!    refuses the request. The request then connects only to those checked addresses: the client
//!    is built per request with `resolve_to_addrs(name, checked)` and a fallback resolver that
//!    refuses every name, with proxies disabled (an `HTTPS_PROXY` variable would otherwise route
//!    the request through a proxy that resolves on its own).
//! 4. Redirects are never followed: a `3xx` comes back as an ordinary response. `Referer` is off.
//! 5. Every request has a connect timeout and a total timeout (DNS, connect, TLS, headers and
//!    body together); at most `max_response_bytes` of the body are read, the rest is not read.
//! 6. [`OutboundError`] says which rule refused the request but carries no address, DNS answer,
//!    URL or transport message; those go to the `palisade::outbound` tracing target only. Response
//!    bodies are returned to the calling code, which must never show them to end users.
//!
//! # DNS rebinding
//!
//! A rebinding server answers the first query with a public address and every later query (TTL 0)
//! with `127.0.0.1`. Classic "resolve, check, then let the HTTP client connect" code loses,
//! because the client resolves a second time. Here the client never resolves: the checked answers
//! are pinned into it with `resolve_to_addrs`, and its only other resolver refuses everything. So
//! the address that was checked is the address connected to, whatever the TTL. The test
//! `pinned_resolution_is_used_once` plays the rebinding server with a resolver that changes its
//! answer after the first call and shows that it is called only once; no real DNS server is
//! needed. TLS still verifies the certificate against the *name*, and `Host` carries the name.
//!
//! # Not covered
//!
//! - Network-level egress control. This module is one layer; production should still run
//!   delivery workers where a firewall denies private ranges (defence in depth, OWASP, Svix).
//! - Ownership of the endpoint (the echo-token challenge) and tenant-admin approval of new URLs:
//!   those belong to the webhook use cases that call this module.
//! - Stable source IPs (smokescreen-style egress proxy) and per-tenant rate limits.
//! - Public addresses that are nonetheless ours (our own load balancer's public IP): add them to a
//!   deny list in the caller if that matters; this module only knows special-purpose ranges.
//! - [`OutboundPolicy::development`] (`allow_private_targets`) turns off the address, host-name,
//!   port and https rules; it is for development and tests only and must never be configurable
//!   per tenant.

mod client;
pub mod ip;
mod redact;
mod target;

use std::time::Duration;

pub use client::{
    resolve_checked, send, send_with_resolver, traced_send, HostResolver, PinnedClient,
    SystemResolver, USER_AGENT,
};
pub use redact::redact_url;
pub use reqwest::header::HeaderMap;
pub use reqwest::{Method, StatusCode};
pub use target::{TargetHost, TargetUrl, MAX_URL_LEN};

/// What outgoing requests may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Development and tests only: allow plain `http`, any port, and loopback, private and other
    /// special-purpose addresses and names.
    pub allow_private_targets: bool,
    /// Ports allowed when `allow_private_targets` is off. Default: 443.
    pub allowed_ports: Vec<u16>,
    /// Limit for DNS resolution, and separately for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for the whole exchange: DNS, connect, TLS, request, response headers and body.
    pub total_timeout: Duration,
    /// At most this many response body bytes are read; the rest is discarded unread.
    pub max_response_bytes: usize,
    /// Request bodies larger than this are refused with [`OutboundError::TooLarge`].
    pub max_request_bytes: usize,
}

impl Default for OutboundPolicy {
    /// The production policy.
    fn default() -> Self {
        OutboundPolicy {
            allow_private_targets: false,
            allowed_ports: vec![443],
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_response_bytes: 64 * 1024,
            max_request_bytes: 1024 * 1024,
        }
    }
}

impl OutboundPolicy {
    /// The production policy (same as [`Default`]).
    pub fn strict() -> Self {
        Self::default()
    }

    /// Development and tests only: plain http and private targets allowed.
    pub fn development() -> Self {
        OutboundPolicy {
            allow_private_targets: true,
            allowed_ports: vec![80, 443],
            ..Self::default()
        }
    }
}

/// A response. `body_truncated` holds at most `max_response_bytes`; `truncated` says whether
/// more was there. Never show the body to end users (it may be an internal error page).
#[derive(Clone, Debug)]
pub struct OutboundResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body_truncated: Vec<u8>,
    pub truncated: bool,
    pub latency: Duration,
}

/// Why a URL failed the syntax checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("the URL could not be parsed")]
    Syntax,
    #[error("the URL is too long")]
    TooLong,
    #[error("the URL contains whitespace, control, non-ASCII or backslash characters")]
    DisallowedCharacter,
    #[error("the scheme must be written in lower case")]
    SchemeNotLowercase,
    #[error("the URL has no host")]
    MissingHost,
    #[error("the host must not be percent-encoded or carry a zone id")]
    PercentEncodedHost,
    #[error("the host looks like a numeric address in an unusual notation")]
    NumericHost,
    #[error("the host name is malformed (or ends with a dot)")]
    MalformedHost,
}

/// Why an outgoing request was refused or failed. The messages are safe to show to the tenant
/// who configured the URL: they name the rule, never the address, DNS answer or internal error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL: {0}")]
    InvalidUrl(UrlProblem),
    #[error("only https URLs are allowed")]
    ForbiddenScheme,
    #[error("URLs must not contain a user name or password")]
    UserinfoNotAllowed,
    #[error("this port is not allowed")]
    ForbiddenPort,
    #[error("this host name is not allowed")]
    ForbiddenHost,
    #[error("the destination resolves to an address that is not allowed")]
    ForbiddenAddress,
    #[error("the host name could not be resolved")]
    DnsFailure,
    #[error("could not connect to the destination")]
    Connect,
    #[error("the destination did not answer in time")]
    Timeout,
    #[error("the request body is too large")]
    TooLarge,
    #[error("the request failed")]
    Transport,
}

impl OutboundError {
    /// A stable machine-readable code, for API responses, metrics and delivery logs.
    pub fn code(&self) -> &'static str {
        match self {
            OutboundError::InvalidUrl(_) => "invalid_url",
            OutboundError::ForbiddenScheme => "forbidden_scheme",
            OutboundError::UserinfoNotAllowed => "userinfo_not_allowed",
            OutboundError::ForbiddenPort => "forbidden_port",
            OutboundError::ForbiddenHost => "forbidden_host",
            OutboundError::ForbiddenAddress => "forbidden_address",
            OutboundError::DnsFailure => "dns_failure",
            OutboundError::Connect => "connect_failed",
            OutboundError::Timeout => "timeout",
            OutboundError::TooLarge => "too_large",
            OutboundError::Transport => "transport_error",
        }
    }

    /// True when the policy refused the target (retrying cannot help), false for failures of
    /// the network or the remote end.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            OutboundError::InvalidUrl(_)
                | OutboundError::ForbiddenScheme
                | OutboundError::UserinfoNotAllowed
                | OutboundError::ForbiddenPort
                | OutboundError::ForbiddenHost
                | OutboundError::ForbiddenAddress
                | OutboundError::TooLarge
        )
    }
}

#[cfg(test)]
mod tests;
