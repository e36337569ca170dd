//! IP notations, blocked ranges, host normalization, allowlist entries; property test: every
//! notation of a blocked address is denied, public hosts on the allowlist are allowed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{PolicyContext, PolicyOptions, PolicySet, RawPolicyOptions};

fn set(allow: &[&str]) -> PolicySet {
    let raw = RawPolicyOptions::from_json(
        &json!({"network_egress_policy": "allow", "network_allowlist": allow}),
    )
    .unwrap();
    PolicySet::compile(
        &PolicyOptions::try_from(raw).unwrap(),
        PolicyContext::new("/srv/app"),
    )
    .unwrap()
}

fn v4(s: &str) -> Option<IpAddr> {
    parse_ip_literal(s)
}

#[test]
fn ip_notations() {
    let lo = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
    for s in [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "0x7F000001",
        "127.1",
        "127.0.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
        "64:ff9b::127.0.0.1",
        "::127.0.0.1",
        "017700000001",
    ] {
        assert_eq!(v4(s), lo, "{s}");
    }
    assert_eq!(v4("256.1"), None);
    assert_eq!(v4("1.2.3.256"), None);
    assert_eq!(v4("example.com"), None);
    assert_eq!(v4("::1"), Some("::1".parse().unwrap()));
    assert_eq!(v4("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
}

#[test]
fn blocked_ranges() {
    for s in [
        "0.0.0.0",
        "10.1.2.3",
        "100.64.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.168.1.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
    ] {
        assert!(is_blocked_ip(s.parse().unwrap()), "{s}");
    }
    for s in [
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
        "93.184.216.34",
    ] {
        assert!(!is_blocked_ip(s.parse().unwrap()), "{s}");
    }
}

#[test]
fn allowlist_entries() {
    let s = set(&[
        "example.com",
        "=exact.org",
        "api.test:8443",
        "https://docs.rs/foo",
        "10.0.0.0/8",
        "*.wild.io",
    ]);
    assert!(s.check_url("https://example.com/").is_ok());
    assert!(s.check_url("https://a.b.example.com/").is_ok());
    assert!(s.check_url("https://evilexample.com/").is_err());
    assert!(s.check_url("https://example.com.evil.test/").is_err());
    assert!(s.check_url("https://exact.org/").is_ok());
    assert!(s.check_url("https://sub.exact.org/").is_err());
    assert!(s.check_url("https://api.test:8443/").is_ok());
    assert!(s.check_url("https://api.test/").is_err());
    assert!(s.check_url("https://docs.rs/x").is_ok());
    assert_eq!(
        s.check_url("http://10.2.3.4/").unwrap().ip,
        Some("10.2.3.4".parse().unwrap())
    );
    assert!(s.check_ip("10.9.9.9".parse().unwrap()).is_ok());
    assert!(s.check_ip("127.0.0.1".parse().unwrap()).is_err());
    assert!(s.check_url("https://a.wild.io/").is_ok());
    assert!(s.check_url("https://wild.io/").is_err());
    assert_eq!(s.allowed_ports(), vec![80, 443, 8443]);
}

#[test]
fn empty_allowlist_allows_no_host_and_star_allows_public() {
    assert!(set(&[]).check_url("https://example.com/").is_err());
    let star = set(&["*"]);
    assert!(star.check_url("https://example.com/").is_ok());
    assert!(star.check_url("http://8.8.8.8/").is_ok());
    assert!(star.check_url("http://127.0.0.1/").is_err());
}

#[test]
fn host_normalization() {
    let s = set(&["*"]);
    let u = s
        .check_url("https://user:pw@BÜCHER.example.:8080/x")
        .unwrap();
    assert_eq!(
        u,
        CheckedUrl {
            scheme: "https".into(),
            host: "xn--bcher-kva.example".into(),
            ip: None,
            port: Some(8080)
        }
    );
    let u = s.check_url("//example.com/x").unwrap();
    assert_eq!(u.scheme, "");
    assert_eq!(
        s.check_url("http://%6c%6f%63%61%6c%68%6f%73%74/")
            .unwrap_err()
            .details()["detail"],
        json!("blocked_range")
    );
    assert_eq!(
        s.check_url("http://a@127.0.0.1@example.com/").unwrap().host,
        "example.com"
    );
    assert_eq!(
        s.check_url("http://exa\tmple.com/").unwrap_err().details()["detail"],
        json!("ambiguous_authority")
    );
    assert_eq!(
        s.check_url("http://example.com%5c@evil/")
            .unwrap_err()
            .details()["detail"],
        json!("ambiguous_authority")
    );
    assert_eq!(
        s.check_host_str("LOCALHOST:22").unwrap_err().details()["detail"],
        json!("blocked_range")
    );
    assert_eq!(
        s.check_host_str("[::1]:80").unwrap_err().details()["detail"],
        json!("blocked_range")
    );
    assert_eq!(
        s.check_host_str("fd00::5").unwrap_err().details()["detail"],
        json!("blocked_range")
    );
    assert!(s.check_host_str("example.com:8080").is_ok());
    assert_eq!(
        s.check_url("gopher://x/").unwrap_err().code(),
        "network_protocol_denied"
    );
    assert_eq!(
        s.check_url("mailto:a@b").unwrap_err().code(),
        "network_protocol_denied"
    );
}

static PUBLIC: std::sync::LazyLock<Vec<PolicySet>> = std::sync::LazyLock::new(|| {
    ["com", "org", "dev", "io"]
        .iter()
        .map(|t| set(&[format!("example-site.{t}").as_str()]))
        .collect()
});
static STAR: std::sync::LazyLock<PolicySet> =
    std::sync::LazyLock::new(|| set(&["*", "example.com"]));

/// Every notation of an IPv4 address the URL parser (or libc) accepts.
fn notations(a: Ipv4Addr) -> Vec<String> {
    let [b0, b1, b2, b3] = a.octets();
    let n = u32::from(a);
    vec![
        a.to_string(),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0X{n:X}"),
        format!("0{n:o}"),
        format!("0{b0:o}.0{b1:o}.0{b2:o}.0{b3:o}"),
        format!("0x{b0:x}.0x{b1:x}.0x{b2:x}.0x{b3:x}"),
        format!("{b0}.{}", n & 0x00ff_ffff),
        format!("0x{b0:x}.{}", n & 0x00ff_ffff),
        format!("{b0}.{b1}.{}", n & 0xffff),
        format!("{a}."),
        format!("[::ffff:{a}]"),
        format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
        format!("[64:ff9b::{a}]"),
        format!("[::{a}]"),
        format!("[0:0:0:0:0:ffff:{a}]"),
    ]
}

fn blocked_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x7f00_0000 | (x & 0x00ff_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xac10_0000 | (x & 0x000f_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xc0a8_0000 | (x & 0x0000_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0xa9fe_0000 | (x & 0x0000_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(0x6440_0000 | (x & 0x003f_ffff))),
        any::<u32>().prop_map(|x| Ipv4Addr::from(x & 0x00ff_ffff)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_notation_of_a_blocked_address_is_denied(a in blocked_v4(), user in proptest::option::of("[a-z]{1,5}"), port in proptest::option::of(1u16..)) {
        let s = &*STAR;
        for host in notations(a) {
            let auth = match (&user, port) {
                (Some(u), Some(p)) => format!("{u}@{host}:{p}"),
                (Some(u), None) => format!("{u}@{host}"),
                (None, Some(p)) => format!("{host}:{p}"),
                (None, None) => host.clone(),
            };
            let url = format!("http://{auth}/x");
            let e = s.check_url(&url);
            prop_assert!(matches!(e, Err(PolicyError::NetworkEndpointDenied { detail: EndpointDetail::BlockedRange, .. })), "{url}: {e:?}");
            let h = s.check_host_str(&host);
            prop_assert!(h.is_err(), "{host}: {h:?}");
            prop_assert_eq!(parse_ip_literal(&host).map(canonical_ip), Some(IpAddr::V4(a)), "{}", host);
        }
    }

    #[test]
    fn public_hosts_on_the_allowlist_are_allowed(labels in proptest::collection::vec("[a-z][a-z0-9-]{0,10}[a-z0-9]", 0..3), tld in 0usize..4) {
        let base = format!("example-site.{}", ["com", "org", "dev", "io"][tld]);
        let s = &PUBLIC[tld];
        let host = if labels.is_empty() { base.clone() } else { format!("{}.{base}", labels.join(".")) };
        prop_assert!(s.check_url(&format!("https://{host}/path?q=1")).is_ok(), "{host}");
        let evil = format!("{}{base}", labels.first().cloned().unwrap_or_else(|| "evil".into()));
        prop_assert!(s.check_url(&format!("https://{evil}/")).is_err(), "{evil}");
        let suffix = format!("https://{base}.evil.test/");
        prop_assert!(s.check_url(&suffix).is_err());
    }
}
