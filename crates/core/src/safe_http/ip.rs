//! Which IP addresses an outgoing request may reach.
//!
//! One function decides, [`is_forbidden`], and it is used for IP literals in URLs *and* for every
//! DNS answer. It is a deny list of every special-purpose range (IANA special-purpose registries,
//! RFC 6890 and successors) plus, for IPv6, an allow list: only global unicast `2000::/3` can pass
//! at all, so ranges that a future RFC carves out of the unallocated space are refused by default.
//!
//! IPv6 forms that embed an IPv4 address are judged by that IPv4 address (IPv4-mapped
//! `::ffff:a.b.c.d`, 6to4 `2002:AABB:CCDD::/48`) or refused outright (IPv4-compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, Teredo `2001::/32`, which all lie outside `2000::/3`
//! or inside `2001::/23`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are never a public webhook receiver: `(network, prefix length)`.
const FORBIDDEN_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network"; 0.0.0.0 reaches localhost on Linux
    (Ipv4Addr::new(10, 0, 0, 0), 8), // RFC 1918
    (Ipv4Addr::new(100, 64, 0, 0), 10), // RFC 6598 carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12), // RFC 1918
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments (incl. 192.0.0.192 metadata)
    (Ipv4Addr::new(192, 0, 2, 0), 24), // TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // RFC 1918
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24), // TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, includes broadcast 255.255.255.255
];

/// IPv6 ranges refused outright: `(network, prefix length)`. Everything outside `2000::/3` is
/// refused as well (see [`is_forbidden_v6`]); the ranges below that lie outside it are listed
/// anyway so that the table documents the policy and the tests can name them.
const FORBIDDEN_V6: [(Ipv6Addr, u8); 14] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128), // unspecified ::
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128), // loopback ::1
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96),  // IPv4-compatible ::a.b.c.d (deprecated)
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96), // SIIT ::ffff:0:a.b.c.d
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // NAT64 well-known prefix
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // NAT64 local-use prefix
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// The only IPv6 block IANA allocates for global unicast.
const GLOBAL_UNICAST_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// 6to4: `2002:AABB:CCDD::/48` carries the IPv4 address `AA.BB.CC.DD`.
const SIX_TO_FOUR: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

fn v4_in(addr: Ipv4Addr, (net, prefix): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX
        .checked_shl(32_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0);
    u32::from(addr) & mask == u32::from(net) & mask
}

fn v6_in(addr: Ipv6Addr, (net, prefix): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX
        .checked_shl(128_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0);
    u128::from(addr) & mask == u128::from(net) & mask
}

/// True when no outgoing request may reach `ip` (unless the policy allows private targets).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

/// True for every IPv4 address in a non-public range.
pub fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    FORBIDDEN_V4.iter().any(|range| v4_in(ip, *range))
}

/// True for every IPv6 address that is not plainly global unicast, or that embeds a forbidden
/// IPv4 address.
pub fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (`::ffff:a.b.c.d`): the kernel sends it as IPv4, so judge it as IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    if FORBIDDEN_V6.iter().any(|range| v6_in(ip, *range)) {
        return true;
    }
    if !v6_in(ip, GLOBAL_UNICAST_V6) {
        return true;
    }
    if let Some(v4) = six_to_four_embedded(ip) {
        return is_forbidden_v4(v4);
    }
    false
}

/// The IPv4 address a 6to4 address routes to, if `ip` is one.
fn six_to_four_embedded(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if !v6_in(ip, SIX_TO_FOUR) {
        return None;
    }
    let [_, hi, lo, ..] = ip.segments();
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Some(Ipv4Addr::new(a, b, c, d))
}

/// The address a socket will actually talk to: IPv4-mapped IPv6 becomes plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_addresses() {
        let cases = [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.192",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::a00:1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2001:10::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "4000::1",
            "1::1",
        ];
        for case in cases {
            assert!(is_forbidden(ip(case)), "{case} should be forbidden");
        }
    }

    #[test]
    fn public_addresses() {
        let cases = [
            "1.1.1.1",
            "8.8.8.8",
            "9.9.9.9",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.88.98.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
            "2001:200::1",
        ];
        for case in cases {
            assert!(!is_forbidden(ip(case)), "{case} should be allowed");
        }
    }

    #[test]
    fn canonical_unmaps_ipv4_mapped() {
        assert_eq!(canonical(ip("::ffff:8.8.8.8")), ip("8.8.8.8"));
        assert_eq!(canonical(ip("2001:4860::1")), ip("2001:4860::1"));
        assert_eq!(canonical(ip("1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn six_to_four_extracts_embedded_address() {
        assert_eq!(
            six_to_four_embedded("2002:7f00:1::".parse().unwrap()),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(six_to_four_embedded("2003::1".parse().unwrap()), None);
    }
}
