//! What a sign-in came from: the browser and OS named by its User-Agent, and the device key the
//! new-device alert compares.
//!
//! A device is browser family + OS family + network (/24 for IPv4, /64 for IPv6): a browser
//! update, a new address from the same provider's pool or a DHCP renewal is the same device; a
//! new browser, a new operating system or another network is not. Only a keyed MAC of the key is
//! stored (`login_history.device_hash`), so the history's hash column reveals no network.

use std::net::IpAddr;

/// A User-Agent header, read with woothee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// For display, with the version, e.g. `Firefox 128.0`.
    pub browser: Option<String>,
    /// The browser family alone, e.g. `Firefox` (part of the device key).
    pub browser_family: Option<String>,
    /// e.g. `Linux`, `Windows 10`, `Mac OSX`.
    pub os: Option<String>,
}

impl UserAgent {
    pub fn parse(ua: &str) -> UserAgent {
        match woothee::parser::Parser::new().parse(ua) {
            Some(r) => {
                let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_owned());
                let family = known(r.name);
                let browser = family.clone().map(|n| match known(r.version) {
                    Some(v) => format!("{n} {v}"),
                    None => n,
                });
                UserAgent {
                    browser,
                    browser_family: family,
                    os: known(r.os),
                }
            }
            None => UserAgent::default(),
        }
    }
}

/// The network part of an address: the /24 of an IPv4 address, the /64 of an IPv6 one (an
/// IPv4-mapped IPv6 address counts as IPv4).
pub fn network(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            let prefix = std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// The device key before hashing: `browser family | OS | network`, empty parts for what is
/// unknown.
pub fn device_key(ua: &UserAgent, ip: Option<IpAddr>) -> String {
    format!(
        "{}|{}|{}",
        ua.browser_family.as_deref().unwrap_or(""),
        ua.os.as_deref().unwrap_or(""),
        ip.map(network).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const FIREFOX_LINUX_NEWER: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";
    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

    #[test]
    fn a_user_agent_gives_browser_with_version_family_and_os() {
        let ua = UserAgent::parse(FIREFOX_LINUX);
        assert_eq!(ua.browser.as_deref(), Some("Firefox 128.0"));
        assert_eq!(ua.browser_family.as_deref(), Some("Firefox"));
        assert_eq!(ua.os.as_deref(), Some("Linux"));
        assert_eq!(UserAgent::parse("curl/8.0"), UserAgent::parse("curl/8.1"));
        assert_eq!(UserAgent::parse(""), UserAgent::default());
    }

    #[test]
    fn networks_are_the_24_and_the_64() {
        assert_eq!(network("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            network("::ffff:203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            network("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_browser_update_or_a_neighbouring_address_is_the_same_device() {
        let ip = |s: &str| Some(s.parse().unwrap());
        let a = device_key(&UserAgent::parse(FIREFOX_LINUX), ip("203.0.113.7"));
        assert_eq!(
            a,
            device_key(&UserAgent::parse(FIREFOX_LINUX_NEWER), ip("203.0.113.200"))
        );
        assert_ne!(
            a,
            device_key(&UserAgent::parse(CHROME_WINDOWS), ip("203.0.113.7"))
        );
        assert_ne!(
            a,
            device_key(&UserAgent::parse(FIREFOX_LINUX), ip("203.0.114.7"))
        );
    }
}
