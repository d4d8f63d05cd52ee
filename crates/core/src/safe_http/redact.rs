//! [`redact_url`]: a tenant's URL as it may be kept or shown (audit log, notifications, logs).
//! Separate from [`super::target`], which decides whether a URL may be *sent to*: this only
//! hides what a URL may carry (a receiver's token), for any text, valid target or not.

use reqwest::Url;

/// `url` as it may be written where it is kept or shown to others than the admins who edit
/// it (the append-only audit log, notifications, log lines): the query string becomes
/// `REDACTED` and so does any userinfo, because either may carry a receiver's token
/// (`https://hooks.example.com/in?token=…` is stored as `https://hooks.example.com/in?REDACTED`);
/// the fragment is dropped. Scheme, host, port and path stay, so the endpoint stays
/// recognisable. Text that does not parse as a URL is not repeated at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = Url::parse(url.trim()) else {
        return "[unparseable URL]".to_owned();
    };
    if !u.username().is_empty() || u.password().is_some() {
        // Both only fail for URLs without a host, which have no userinfo to hide.
        let _ = u.set_password(None);
        let _ = u.set_username("REDACTED");
    }
    match u.query() {
        Some(q) if !q.is_empty() => u.set_query(Some("REDACTED")),
        _ => u.set_query(None),
    }
    u.set_fragment(None);
    u.into()
}

#[cfg(test)]
mod redaction_tests {
    #![allow(clippy::unwrap_used)]
    use super::redact_url;

    #[test]
    fn query_and_userinfo_are_redacted_and_the_endpoint_kept() {
        for (given, shown) in [
            (
                "https://hooks.example.com/in?token=s3cret&x=1",
                "https://hooks.example.com/in?REDACTED",
            ),
            (
                "https://user:pa55@hooks.example.com:8443/a/b?k=v#frag",
                "https://REDACTED@hooks.example.com:8443/a/b?REDACTED",
            ),
            (
                "https://hooks.example.com/path",
                "https://hooks.example.com/path",
            ),
            (
                "https://hooks.example.com/path?",
                "https://hooks.example.com/path",
            ),
            ("http://10.0.0.1/x#token=abc", "http://10.0.0.1/x"),
            ("not a url ?token=s3cret", "[unparseable URL]"),
        ] {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }
}
