//! Client addresses as every control sees them: trusted proxies, API key allow-lists, rate
//! limits and the audit log.
//!
//! A server listening on `[::]` sees IPv4 clients as IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`).
//! Left alone, one client would have two identities: `203.0.113.7` in an allow-list or the
//! trusted-proxy list would not match `::ffff:203.0.113.7`, and each spelling would get its own
//! rate-limit budget. The web layer therefore normalises the address once, where it determines
//! the client ([`canonical`]), and configured ranges are compared in the same form
//! ([`net_contains`]), so a range written as `::ffff:10.0.0.0/104` means `10.0.0.0/8`.

use ipnet::{IpNet, Ipv4Net};
use std::net::IpAddr;

/// The address the client really has: an IPv4-mapped IPv6 address becomes the plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    crate::safe_http::ip::canonical(ip)
}

/// `net` in canonical form: an IPv4-mapped IPv6 range (prefix of at least 96 bits) becomes the
/// IPv4 range it maps; anything else is unchanged.
pub fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// Whether `ip` is in `net`, both taken in canonical form.
pub fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    canonical_net(*net).contains(&canonical(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_addresses_are_their_ipv4() {
        assert_eq!(canonical(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(canonical(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
        // IPv4-compatible (deprecated, `::a.b.c.d`) is not mapped: it stays IPv6.
        assert_eq!(canonical(ip("::203.0.113.7")), ip("::203.0.113.7"));
    }

    #[test]
    fn ranges_match_either_spelling() {
        assert!(net_contains(&net("10.0.0.0/8"), ip("::ffff:10.1.2.3")));
        assert!(net_contains(&net("::ffff:10.0.0.0/104"), ip("10.1.2.3")));
        assert!(net_contains(
            &net("::ffff:10.0.0.1/128"),
            ip("::ffff:10.0.0.1")
        ));
        assert!(!net_contains(&net("10.0.0.0/8"), ip("::ffff:11.0.0.1")));
        assert!(!net_contains(&net("::ffff:10.0.0.0/104"), ip("11.0.0.1")));
        assert!(net_contains(&net("2001:db8::/32"), ip("2001:db8::9")));
        assert!(
            !net_contains(&net("::/0"), ip("10.0.0.1")),
            "IPv6 ranges hold no IPv4 client"
        );
        assert_eq!(canonical_net(net("::ffff:0.0.0.0/96")), net("0.0.0.0/0"));
    }
}
