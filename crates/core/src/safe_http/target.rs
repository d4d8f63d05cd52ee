//! [`TargetUrl`]: a URL that has passed every check that can be made without DNS.
//!
//! Checks run twice: on the raw text (so that nothing the WHATWG parser silently repairs, such as
//! surrounding whitespace, backslashes, tabs inside the host or percent-encoded host bytes, can
//! smuggle a different host past a human reviewer or a log reader), then on the parsed URL.
//! The `url` crate (re-exported by reqwest) already turns every IPv4 notation the WHATWG URL
//! standard knows (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`, `127.0.0.1.`) into a real IPv4
//! address; on top of that any domain whose last label is numeric is refused, so a notation the
//! parser did not fold can never reach `getaddrinfo`, which would accept it as an address.
//!
//! The file stays one piece: the checks are about 250 lines, and the rest is their tests (each
//! hostile notation next to the rule that refuses it). Redacting URLs for storage, which is
//! not a check, lives in `redact.rs`.

use std::fmt;
use std::net::IpAddr;

use reqwest::Url;

use super::ip::is_forbidden;
use super::{OutboundError, OutboundPolicy, UrlProblem};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Host names (and suffixes) that name internal services or are reserved and never public.
/// `x` is refused when it equals an entry or ends with `.entry`.
const FORBIDDEN_HOST_SUFFIXES: [&str; 16] = [
    "localhost",
    "localdomain",
    "internal", // metadata.google.internal, *.ec2.internal, ICANN-reserved private TLD
    "local",    // mDNS, *.cluster.local (Kubernetes)
    "intranet",
    "corp",
    "home",
    "lan",
    "private",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
    "test",
    "example",
    "invalid",
    "onion",
];

/// Where a target lives: a DNS name to resolve (and pin), or an IP literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetHost {
    /// Lower-case ASCII (punycode) name, no trailing dot.
    Domain(String),
    /// An IP literal in the URL (IPv4 already folded from any legacy notation).
    Ip(IpAddr),
}

/// A URL that passed the syntactic SSRF checks of an [`OutboundPolicy`].
///
/// Build it with [`TargetUrl::parse`]. `send` checks it again against the policy it is given, so a
/// target parsed under a permissive policy cannot be sent under a strict one.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
    host: TargetHost,
    port: u16,
}

impl TargetUrl {
    /// Validate `input` against `policy`. The fragment, never sent on the wire, is dropped.
    pub fn parse(input: &str, policy: &OutboundPolicy) -> Result<Self, OutboundError> {
        check_raw(input)?;
        let mut url =
            Url::parse(input).map_err(|_| OutboundError::InvalidUrl(UrlProblem::Syntax))?;
        url.set_fragment(None);
        let (host, port) = check_parsed(&url, policy)?;
        Ok(TargetUrl { url, host, port })
    }

    /// Run the parsed-URL checks again under `policy`.
    pub(crate) fn recheck(&self, policy: &OutboundPolicy) -> Result<(), OutboundError> {
        let (host, port) = check_parsed(&self.url, policy)?;
        if host != self.host || port != self.port {
            return Err(OutboundError::InvalidUrl(UrlProblem::Syntax));
        }
        Ok(())
    }

    /// The full URL, including path and query (which may hold secrets: do not log it).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host to resolve or connect to.
    pub fn host(&self) -> &TargetHost {
        &self.host
    }

    /// The effective port (explicit, or the scheme's default).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// `scheme://host:port`, safe to log: no path, query or fragment.
    pub fn redacted(&self) -> String {
        match &self.host {
            TargetHost::Domain(name) => format!("{}://{}:{}", self.scheme(), name, self.port),
            TargetHost::Ip(IpAddr::V4(v4)) => format!("{}://{}:{}", self.scheme(), v4, self.port),
            TargetHost::Ip(IpAddr::V6(v6)) => format!("{}://[{}]:{}", self.scheme(), v6, self.port),
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TargetUrl").field(&self.redacted()).finish()
    }
}

/// Checks on the text as the user typed it.
fn check_raw(input: &str) -> Result<(), OutboundError> {
    let bad = |problem| Err(OutboundError::InvalidUrl(problem));
    if input.len() > MAX_URL_LEN {
        return bad(UrlProblem::TooLong);
    }
    // Printable ASCII only: no whitespace anywhere (the parser would strip or drop it), no
    // control characters, no DEL, no Unicode (IDNA mapping could fold full-width digits or dots
    // into an IP literal); international names must be given in punycode.
    if !input.bytes().all(|b| b.is_ascii_graphic()) {
        return bad(UrlProblem::DisallowedCharacter);
    }
    // The WHATWG parser treats `\` as `/` for special schemes; other parsers do not.
    if input.contains('\\') {
        return bad(UrlProblem::DisallowedCharacter);
    }
    let rest = match input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))
    {
        Some(rest) => rest,
        None => {
            let lower = input.to_ascii_lowercase();
            if lower.starts_with("https://") || lower.starts_with("http://") {
                return bad(UrlProblem::SchemeNotLowercase);
            }
            if lower.starts_with("https:") || lower.starts_with("http:") {
                return bad(UrlProblem::Syntax);
            }
            return Err(OutboundError::ForbiddenScheme);
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return bad(UrlProblem::MissingHost);
    }
    // Even an empty userinfo (`https://@host`) is refused: `a@b` reads like host `a` to people.
    if authority.contains('@') {
        return Err(OutboundError::UserinfoNotAllowed);
    }
    // Percent-encoded host bytes and IPv6 zone ids (`[fe80::1%25eth0]`).
    if authority.contains('%') {
        return bad(UrlProblem::PercentEncodedHost);
    }
    Ok(())
}

/// Checks on the parsed URL; returns the host and the effective port.
fn check_parsed(url: &Url, policy: &OutboundPolicy) -> Result<(TargetHost, u16), OutboundError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private_targets => {}
        _ => return Err(OutboundError::ForbiddenScheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::UserinfoNotAllowed);
    }
    let host = match url.host() {
        None => return Err(OutboundError::InvalidUrl(UrlProblem::MissingHost)),
        Some(url::Host::Ipv4(v4)) => TargetHost::Ip(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => TargetHost::Ip(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => TargetHost::Domain(check_domain(name, policy)?),
    };
    if let TargetHost::Ip(ip) = host {
        if !policy.allow_private_targets && is_forbidden(ip) {
            return Err(OutboundError::ForbiddenAddress);
        }
    }
    let port = url
        .port_or_known_default()
        .ok_or(OutboundError::ForbiddenPort)?;
    if port == 0 || !(policy.allow_private_targets || policy.allowed_ports.contains(&port)) {
        return Err(OutboundError::ForbiddenPort);
    }
    Ok((host, port))
}

fn check_domain(name: &str, policy: &OutboundPolicy) -> Result<String, OutboundError> {
    let malformed = Err(OutboundError::InvalidUrl(UrlProblem::MalformedHost));
    // A trailing dot makes the name absolute: `localhost.` is `localhost`, and suffix matching,
    // TLS name checks and virtual hosting all disagree about it. Refuse rather than normalise.
    if name.is_empty() || name.len() > 253 || name.ends_with('.') {
        return malformed;
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars {
            return malformed;
        }
    }
    // No top-level domain is numeric. A name ending in a numeric label is an IP literal in some
    // notation the parser did not fold (or an invalid one); `getaddrinfo` would happily treat
    // `0x7f.1` or `017700000001` as an address, so such names never reach DNS.
    if let Some(last) = labels.last() {
        let hex = last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if hex || last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OutboundError::InvalidUrl(UrlProblem::NumericHost));
        }
    }
    if !policy.allow_private_targets {
        // Single-label names resolve through search domains to internal hosts (`metadata`,
        // `kubernetes`, `intranet`).
        if labels.len() < 2 {
            return Err(OutboundError::ForbiddenHost);
        }
        let denied = FORBIDDEN_HOST_SUFFIXES.iter().any(|suffix| {
            name == *suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('.'))
        });
        if denied {
            return Err(OutboundError::ForbiddenHost);
        }
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> OutboundPolicy {
        OutboundPolicy::default()
    }

    /// What the `url` crate does with legacy IPv4 notations: it folds them all into a real IPv4
    /// address, which our IP check then refuses. This test pins that behaviour so an upgrade that
    /// changes it is noticed.
    #[test]
    fn url_crate_folds_legacy_ipv4_notations() {
        let folded = [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.1/", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://017700000001/", "127.0.0.1"),
            ("http://0xA9.0xFE.0xA9.0xFE/", "169.254.169.254"),
            ("http://2852039166/", "169.254.169.254"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1"),
            ("HTTP://127.0.0.1/", "127.0.0.1"),
            ("http://\t127.0.0.1/", "127.0.0.1"),
        ];
        for (input, expected) in folded {
            let url = Url::parse(input).unwrap();
            let expected: std::net::Ipv4Addr = expected.parse().unwrap();
            assert_eq!(url.host(), Some(url::Host::Ipv4(expected)), "{input}");
        }
        let v6 = Url::parse("http://[::ffff:127.0.0.1]/").unwrap();
        assert_eq!(v6.host_str(), Some("[::ffff:7f00:1]"));
    }

    #[test]
    fn bypass_attempts_are_all_refused() {
        let attempts: &[&str] = &[
            // Loopback and "this host" in every IPv4 notation.
            "https://127.0.0.1/",
            "https://127.0.0.1:443/",
            "https://127.1/",
            "https://127.0.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0177.0000.0000.0001/",
            "https://017700000001/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://0x7F.0x00.0x00.0x01/",
            "https://0/",
            "https://0.0.0.0/",
            "https://127.0.0.1./",
            "https://127.000.000.001/",
            // Cloud metadata.
            "https://169.254.169.254/latest/meta-data/",
            "https://2852039166/",
            "https://0xa9fea9fe/",
            "https://0251.0376.0251.0376/",
            "https://169.254.43518/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fd00:ec2::254]/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://metadata/",
            "https://instance-data.ec2.internal/",
            // Private networks.
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://192.168.0.1/",
            "https://100.64.0.1/",
            "https://198.18.0.1/",
            "https://192.0.0.192/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            // IPv6 literals and IPv4 embeddings.
            "https://[::1]/",
            "https://[::]/",
            "https://[0:0:0:0:0:0:0:1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[::7f00:1]/",
            "https://[64:ff9b::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "https://[fe80::1]/",
            "https://[fe80::1%25eth0]/",
            "https://[fc00::1]/",
            "https://[ff02::1]/",
            "https://[100::1]/",
            "https://[2001:db8::1]/",
            // Names.
            "https://localhost/",
            "https://LOCALHOST/",
            "https://localhost./",
            "https://api.localhost/",
            "https://foo.localhost./",
            "https://printer.local/",
            "https://kubernetes.default.svc.cluster.local/",
            "https://router.home.arpa/",
            "https://1.0.0.127.in-addr.arpa/",
            "https://example.com./",
            "https://1.2.3.4.5/",
            "https://example.0x1/",
            // Userinfo, percent-encoding, whitespace, backslashes, case, Unicode.
            "https://user:pass@example.com/",
            "https://example.com@127.0.0.1/",
            "https://@example.com/",
            "https://%31%32%37.0.0.1/",
            "https://127.0.0.1%2f@example.com/",
            "https://%6c%6f%63%61%6c%68%6f%73%74/",
            " https://127.0.0.1/",
            "https://127.0.0.1/ ",
            "https://127.0.\t0.1/",
            "https://exam\nple.com/",
            "https://example.com\\@127.0.0.1/",
            "https:\\\\127.0.0.1/",
            "HTTPS://example.com/",
            "Https://example.com/",
            "https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "https://127\u{3002}0\u{3002}0\u{3002}1/",
            // Schemes and ports.
            "http://example.com/",
            "http://127.0.0.1/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_INFO",
            "dict://127.0.0.1:11211/stat",
            "ws://example.com/",
            "https:/example.com/",
            "https:example.com",
            "//example.com/",
            "https://example.com:22/",
            "https://example.com:6379/",
            "https://example.com:80/",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://",
            "https:///path",
            "",
        ];
        let policy = strict();
        let mut refused = 0;
        for attempt in attempts {
            match TargetUrl::parse(attempt, &policy) {
                Err(_) => refused += 1,
                Ok(target) => panic!("bypass accepted: {attempt:?} -> {target:?}"),
            }
        }
        assert_eq!(refused, attempts.len());
        assert!(refused >= 40, "only {refused} bypass cases");
    }

    #[test]
    fn refusals_say_why() {
        let policy = strict();
        let cases = [
            ("https://2130706433/", OutboundError::ForbiddenAddress),
            ("https://[::ffff:7f00:1]/", OutboundError::ForbiddenAddress),
            ("https://localhost/", OutboundError::ForbiddenHost),
            (
                "https://metadata.google.internal/",
                OutboundError::ForbiddenHost,
            ),
            ("http://example.com/", OutboundError::ForbiddenScheme),
            ("ftp://example.com/", OutboundError::ForbiddenScheme),
            (
                "https://a:b@example.com/",
                OutboundError::UserinfoNotAllowed,
            ),
            ("https://example.com:8443/", OutboundError::ForbiddenPort),
            (
                "HTTPS://example.com/",
                OutboundError::InvalidUrl(UrlProblem::SchemeNotLowercase),
            ),
            (
                "https://%31%32%37.0.0.1/",
                OutboundError::InvalidUrl(UrlProblem::PercentEncodedHost),
            ),
            (
                " https://example.com/",
                OutboundError::InvalidUrl(UrlProblem::DisallowedCharacter),
            ),
            (
                "https://example.com./",
                OutboundError::InvalidUrl(UrlProblem::MalformedHost),
            ),
            (
                "https:/example.com/",
                OutboundError::InvalidUrl(UrlProblem::Syntax),
            ),
            (
                "https://1.2.3.4.5/",
                OutboundError::InvalidUrl(UrlProblem::Syntax),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                TargetUrl::parse(input, &policy).unwrap_err(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn public_targets_are_accepted() {
        let policy = strict();
        let cases = [
            (
                "https://example.com/hook",
                TargetHost::Domain("example.com".into()),
            ),
            (
                "https://example.com:443/",
                TargetHost::Domain("example.com".into()),
            ),
            (
                "https://Hooks.Example.ORG/a/b?c=d",
                TargetHost::Domain("hooks.example.org".into()),
            ),
            (
                "https://xn--bcher-kva.com/",
                TargetHost::Domain("xn--bcher-kva.com".into()),
            ),
            (
                "https://my_service.example.net/",
                TargetHost::Domain("my_service.example.net".into()),
            ),
            (
                "https://8.8.8.8/",
                TargetHost::Ip("8.8.8.8".parse().unwrap()),
            ),
            (
                "https://1.1.1.1:443/dns-query",
                TargetHost::Ip("1.1.1.1".parse().unwrap()),
            ),
            (
                "https://[2606:4700:4700::1111]/",
                TargetHost::Ip("2606:4700:4700::1111".parse().unwrap()),
            ),
            (
                "https://api.example.com/x#fragment",
                TargetHost::Domain("api.example.com".into()),
            ),
        ];
        for (input, host) in cases {
            let target = TargetUrl::parse(input, &policy)
                .unwrap_or_else(|e| panic!("{input} refused: {e:?}"));
            assert_eq!(target.host(), &host, "{input}");
            assert_eq!(target.port(), 443);
            assert_eq!(target.scheme(), "https");
            assert!(!target.as_str().contains('#'));
        }
    }

    #[test]
    fn allowed_ports_are_configurable() {
        let mut policy = strict();
        assert!(TargetUrl::parse("https://example.com:8443/", &policy).is_err());
        policy.allowed_ports.push(8443);
        assert_eq!(
            TargetUrl::parse("https://example.com:8443/", &policy)
                .unwrap()
                .port(),
            8443
        );
    }

    #[test]
    fn development_policy_allows_http_and_private_targets_only_there() {
        let dev = OutboundPolicy::development();
        for input in [
            "http://127.0.0.1:8080/",
            "http://localhost:3000/hook",
            "http://[::1]:9000/",
            "https://10.0.0.5/",
        ] {
            let target = TargetUrl::parse(input, &dev).unwrap();
            assert!(target.recheck(&strict()).is_err(), "{input}");
        }
        // Still refused in development: userinfo, odd schemes, encodings, backslashes.
        for input in [
            "http://u:p@127.0.0.1/",
            "ftp://127.0.0.1/",
            "http://%6c%6f%63%61%6c%68%6f%73%74/",
            "http:\\\\127.0.0.1/",
            "http://localhost./",
        ] {
            assert!(TargetUrl::parse(input, &dev).is_err(), "{input}");
        }
    }

    #[test]
    fn debug_and_redacted_hide_path_and_query() {
        let target = TargetUrl::parse("https://example.com/hook?token=s3cret", &strict()).unwrap();
        assert_eq!(target.redacted(), "https://example.com:443");
        assert!(!format!("{target:?}").contains("s3cret"));
        let v6 = TargetUrl::parse("https://[2606:4700::1]/", &strict()).unwrap();
        assert_eq!(v6.redacted(), "https://[2606:4700::1]:443");
    }
}
