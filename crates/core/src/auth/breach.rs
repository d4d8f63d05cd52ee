//! The breached-password check: is a new password in a known data breach?
//!
//! Threat: credential stuffing with passwords that leaked elsewhere (NIST 800-63B §3.1.1.2,
//! ASVS 6.2.12). Invariants:
//! - Only the first 5 hex characters of the password's SHA-1 leave the server (the
//!   k-anonymity range API of Have I Been Pwned, or any server speaking it at
//!   `PALISADE_HIBP_URL`); the rest of the hash is compared here. `Add-Padding: true` asks the
//!   server to pad its answer with count-0 lines so the answer's size does not reveal the prefix;
//!   a count-0 line is never a hit.
//! - A range request ends within 2 seconds. Failing to ask is not failing the password
//!   (fail-open): the password is accepted and the failure is recorded as a security event by
//!   the caller (`passwords::check_policy`), because an outage of a third party must not stop
//!   people from registering or changing a password.
//! - The URL is operator configuration (like the Graph API's base URL), not tenant input, so the
//!   webhook SSRF rules (`safe_http`) do not apply; tests point it at a fake server on loopback.
//!   Redirects are not followed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Whether and how breached passwords are refused (`PALISADE_HIBP_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HibpMode {
    /// No check (the development default: no outside calls).
    Off,
    /// Accepted, with `warnings: ["password_breached"]` in the answer.
    Warn,
    /// Refused: `422 validation_failed`, rule `breached` on the password field (the production
    /// default).
    Enforce,
}

impl HibpMode {
    pub fn parse(s: &str) -> Option<HibpMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(HibpMode::Off),
            "warn" => Some(HibpMode::Warn),
            "enforce" => Some(HibpMode::Enforce),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            HibpMode::Off => "off",
            HibpMode::Warn => "warn",
            HibpMode::Enforce => "enforce",
        }
    }

    /// `enforce` in production, `off` in development.
    pub const fn default_for(production: bool) -> HibpMode {
        if production {
            HibpMode::Enforce
        } else {
            HibpMode::Off
        }
    }
}

/// The default range API.
pub const DEFAULT_HIBP_URL: &str = "https://api.pwnedpasswords.com/range/";

/// The warning a `warn`-mode answer carries for a breached password.
pub const PASSWORD_BREACHED: &str = "password_breached";

/// Why a check could not say yes or no.
#[derive(Debug, thiserror::Error)]
pub enum BreachCheckError {
    #[error("the range request timed out")]
    Timeout,
    #[error("the range request failed: {0}")]
    Request(String),
    #[error("the range server answered HTTP {0}")]
    Status(u16),
}

impl BreachCheckError {
    /// A short stable word for the audit record.
    pub fn reason(&self) -> &'static str {
        match self {
            BreachCheckError::Timeout => "timeout",
            BreachCheckError::Request(_) => "request_failed",
            BreachCheckError::Status(_) => "bad_status",
        }
    }
}

pub type BreachFuture<'a> =
    Pin<Box<dyn Future<Output = Result<bool, BreachCheckError>> + Send + 'a>>;

/// Answers whether a password appears in a breach corpus.
pub trait BreachChecker: Send + Sync {
    /// True when `password` is known breached.
    fn is_breached<'a>(&'a self, password: &'a str) -> BreachFuture<'a>;
}

/// The uppercase hex SHA-1 of `password`, split into the 5-character prefix that is sent and
/// the 35-character suffix that is compared locally.
pub fn sha1_prefix_suffix(password: &str) -> (String, String) {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let hex = hex::encode_upper(digest.as_ref());
    let (prefix, suffix) = hex.split_at(5);
    (prefix.to_owned(), suffix.to_owned())
}

/// Whether a range answer (`SUFFIX:COUNT` lines) lists `suffix` with a count above 0. Padding
/// lines have count 0; malformed lines are skipped.
pub fn range_contains(body: &str, suffix: &str) -> bool {
    body.lines().any(|line| {
        let Some((s, count)) = line.trim().split_once(':') else {
            return false;
        };
        s.trim().eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|n| n > 0)
    })
}

/// The k-anonymity range client.
pub struct HibpRangeClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl HibpRangeClient {
    /// Requests end after `timeout` (2 seconds in the server).
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent("Palisade")
            .build()
            .unwrap_or_default();
        HibpRangeClient {
            http,
            base: base_url.to_owned(),
            timeout,
        }
    }

    async fn check(&self, password: &str) -> Result<bool, BreachCheckError> {
        let (prefix, suffix) = sha1_prefix_suffix(password);
        let url = if self.base.ends_with('/') {
            format!("{}{prefix}", self.base)
        } else {
            format!("{}/{prefix}", self.base)
        };
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                BreachCheckError::Timeout
            } else {
                // Without the URL: it holds nothing secret, but the error is logged.
                BreachCheckError::Request(e.without_url().to_string())
            }
        };
        let resp = crate::safe_http::traced_send(self.http.get(url).header("Add-Padding", "true"))
            .await
            .map_err(classify)?;
        if !resp.status().is_success() {
            return Err(BreachCheckError::Status(resp.status().as_u16()));
        }
        let body = resp.text().await.map_err(classify)?;
        Ok(range_contains(&body, &suffix))
    }
}

impl BreachChecker for HibpRangeClient {
    fn is_breached<'a>(&'a self, password: &'a str) -> BreachFuture<'a> {
        // The client's own timeout covers the request; this one also holds if the client
        // could not be built with it (`unwrap_or_default` above) and covers reading the body.
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.check(password))
                .await
                .unwrap_or(Err(BreachCheckError::Timeout))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_five_hex_characters_of_the_sha1() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let (p, s) = sha1_prefix_suffix("password");
        assert_eq!(p, "5BAA6");
        assert_eq!(s, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
    }

    #[test]
    fn a_range_answer_is_read_line_by_line_and_padding_is_no_hit() {
        let suffix = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let hit = format!("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{suffix}:3861493\r\n");
        assert!(range_contains(&hit, suffix));
        assert!(range_contains(&hit.to_lowercase(), suffix));
        let padding = format!("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{suffix}:0\r\n");
        assert!(!range_contains(&padding, suffix));
        assert!(!range_contains("garbage\r\n:\r\nABC:x", suffix));
        assert!(!range_contains("", suffix));
    }

    #[test]
    fn modes_parse_and_default_by_environment() {
        assert_eq!(HibpMode::parse("Enforce"), Some(HibpMode::Enforce));
        assert_eq!(HibpMode::parse("warn"), Some(HibpMode::Warn));
        assert_eq!(HibpMode::parse("off"), Some(HibpMode::Off));
        assert_eq!(HibpMode::parse("on"), None);
        assert_eq!(HibpMode::default_for(true), HibpMode::Enforce);
        assert_eq!(HibpMode::default_for(false), HibpMode::Off);
    }
}
