//! Network egress (SPEC §5.6): IP literals in every notation, blocked ranges, WHATWG host
//! extraction with the `url` crate, ambiguous authorities, and `network_allowlist` entries.
//! [`PolicySet::check_url`] / [`PolicySet::check_ip`] are what `http.fetch` calls on every URL,
//! redirect and DNS answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::error::{EndpointDetail, PolicyError};
use crate::options::EgressPolicy;
use crate::policy_set::PolicySet;

/// Parses one WHATWG IPv4 part: decimal, octal (leading `0`) or hex (`0x`).
fn ipv4_part(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (s.get(1..).unwrap_or_default(), 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 20 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// WHATWG IPv4 parsing: 1–4 dot-separated parts, the last filling the remaining bytes, one
/// trailing dot allowed.
fn parse_ipv4_whatwg(s: &str) -> Option<Ipv4Addr> {
    let s = s.strip_suffix('.').unwrap_or(s);
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| ipv4_part(p)).collect::<Option<_>>()?;
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if rest_bits < 64 && *last >= (1u64 << rest_bits) {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in init.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    v |= last;
    u32::try_from(v).ok().map(Ipv4Addr::from)
}

/// Parses an IP literal in every notation browsers and libc accept: dotted, decimal
/// (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`), short (`127.1`), trailing dot, IPv6
/// with or without brackets (zone ids stripped). IPv4-mapped/-compatible and NAT64 IPv6
/// addresses are returned as their embedded IPv4 address.
pub fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if inner.contains(':') {
        let no_zone = inner.split('%').next().unwrap_or(inner);
        return no_zone
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical_ip(IpAddr::V6(v6)));
    }
    parse_ipv4_whatwg(inner).map(IpAddr::V4)
}

/// Maps IPv6 forms that embed an IPv4 address (mapped `::ffff:0:0/96`, translated
/// `::ffff:0:0:0/96`, compatible `::/96` except `::` and `::1`, NAT64 `64:ff9b::/96` and
/// `64:ff9b:1::/48`, 6to4 `2002::/16`) to that IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let seg = v6.segments();
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => IpAddr::V4(tail),
        [0, 0, 0, 0, 0, 0, a, b] if (a, b) != (0, 0) && (a, b) != (0, 1) => IpAddr::V4(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => IpAddr::V4(tail),
        [0x64, 0xff9b, 1, ..] => IpAddr::V4(tail),
        [0x2002, a, b, ..] => {
            let [a1, a2] = a.to_be_bytes();
            let [b1, b2] = b.to_be_bytes();
            IpAddr::V4(Ipv4Addr::new(a1, a2, b1, b2))
        }
        _ => ip,
    }
}

/// An IP network (address + prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpNet {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` (after [`canonical_ip`]) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Parses `addr/prefix` (any IPv4 notation) or a single address.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let raw_v6 = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .contains(':');
        let addr = if raw_v6 {
            IpAddr::V6(
                a.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .ok()?,
            )
        } else {
            parse_ip_literal(a)?
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        let net = Self { addr, prefix };
        // A v6 CIDR covering embedded-IPv4 space (e.g. ::ffff:0:0/96) matches canonical v4.
        Some(match (addr, prefix) {
            (IpAddr::V6(_), p) if p >= 96 => match canonical_ip(addr) {
                IpAddr::V4(v4) => Self {
                    addr: IpAddr::V4(v4),
                    prefix: p - 96,
                },
                IpAddr::V6(_) => net,
            },
            _ => net,
        })
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet {
        addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        prefix,
    }
}

const fn v6(seg0: u16, prefix: u8) -> IpNet {
    IpNet {
        addr: IpAddr::V6(Ipv6Addr::new(seg0, 0, 0, 0, 0, 0, 0, 0)),
        prefix,
    }
}

/// The blocked ranges of SPEC §5.6 step 4.
pub const BLOCKED_RANGES: &[IpNet] = &[
    v4(0, 0, 0, 0, 8),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 0, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 18, 0, 0, 15),
    v4(224, 0, 0, 0, 4),
    v4(240, 0, 0, 0, 4),
    v6(0, 128),
    IpNet {
        addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        prefix: 128,
    },
    v6(0xfc00, 7),
    v6(0xfe80, 10),
    v6(0xff00, 8),
];

/// Names that are always blocked (besides `*.localhost`).
pub const BLOCKED_NAMES: &[&str] = &["localhost", "metadata.google.internal"];

/// Whether `ip` (any form; embedded IPv4 extracted first) lies in a blocked range.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    BLOCKED_RANGES.iter().any(|n| n.contains(ip))
}

/// Whether a normalized host name is a blocked name (`localhost`, `*.localhost`,
/// `metadata.google.internal`).
pub fn is_blocked_name(host: &str) -> bool {
    BLOCKED_NAMES.contains(&host) || host.ends_with(".localhost")
}

/// One compiled `network_allowlist` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AllowEntry {
    /// `*`: any public host.
    Any {
        /// Pinned port.
        port: Option<u16>,
    },
    /// `example.com` (with subdomains), `=example.com` (exact) or `*.example.com` (subdomains).
    Domain {
        /// Normalized name.
        name: String,
        /// `=` entries match only the name itself.
        exact: bool,
        /// `*.` entries match only subdomains.
        subdomains_only: bool,
        /// Pinned port.
        port: Option<u16>,
    },
    /// IP or CIDR (also covers blocked ranges).
    Ip {
        /// Network.
        net: IpNet,
        /// Pinned port.
        port: Option<u16>,
    },
}

impl AllowEntry {
    /// Parses an entry: `*`, `example.com`, `=example.com`, `*.example.com`, `host:port`, IP,
    /// CIDR, `[v6]:port`, or a URL (reduced to its host and explicit port).
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim();
        if s.is_empty() {
            return None;
        }
        if s.contains("://") {
            let u = url::Url::parse(s).ok()?;
            let host = u.host_str()?;
            let port = u.port();
            let mut e = Self::parse(host)?;
            if let Some(p) = port {
                e.set_port(p);
            }
            return Some(e);
        }
        if s == "*" {
            return Some(Self::Any { port: None });
        }
        if let Some(rest) = s.strip_prefix("*:") {
            return Some(Self::Any {
                port: Some(rest.parse().ok()?),
            });
        }
        if s.contains('/') {
            return IpNet::parse(s).map(|net| Self::Ip { net, port: None });
        }
        // [v6]:port
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, tail) = rest.split_once(']')?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':')?.parse().ok()?),
            };
            let net = IpNet::parse(addr)?;
            return Some(Self::Ip { net, port });
        }
        if s.matches(':').count() >= 2 {
            return IpNet::parse(s).map(|net| Self::Ip { net, port: None });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
            None => (s, None),
        };
        let (host, exact) = match host.strip_prefix('=') {
            Some(h) => (h, true),
            None => (host, false),
        };
        let (host, subdomains_only) = match host.strip_prefix("*.") {
            Some(h) if !exact => (h, true),
            _ => (host, false),
        };
        if let Some(ip) = parse_ip_literal(host).filter(|_| looks_numeric(host)) {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Some(Self::Ip {
                net: IpNet { addr: ip, prefix },
                port,
            });
        }
        let name = normalize_domain(host)?;
        Some(Self::Domain {
            name,
            exact,
            subdomains_only,
            port,
        })
    }

    fn set_port(&mut self, p: u16) {
        match self {
            Self::Any { port } | Self::Domain { port, .. } | Self::Ip { port, .. } => {
                *port = Some(p)
            }
        }
    }

    fn port(&self) -> Option<u16> {
        match self {
            Self::Any { port } | Self::Domain { port, .. } | Self::Ip { port, .. } => *port,
        }
    }

    /// Whether this entry admits `host` (normalized) / `ip` on `port`.
    fn admits(&self, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> bool {
        if self.port().is_some_and(|p| Some(p) != port) {
            return false;
        }
        match self {
            Self::Any { .. } => true,
            Self::Domain {
                name,
                exact,
                subdomains_only,
                ..
            } => {
                if ip.is_some() {
                    return false;
                }
                let sub = host.len() > name.len()
                    && host.ends_with(name.as_str())
                    && host.as_bytes().get(host.len() - name.len() - 1) == Some(&b'.');
                if *exact {
                    host == name
                } else if *subdomains_only {
                    sub
                } else {
                    host == name || sub
                }
            }
            Self::Ip { net, .. } => ip.is_some_and(|ip| net.contains(canonical_ip(ip))),
        }
    }
}

/// Whether a host "ends in a number" (WHATWG): then it must parse as IPv4.
fn looks_numeric(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host);
    let last = h.rsplit('.').next().unwrap_or(h);
    !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || (last.len() >= 2
                && (last.starts_with("0x") || last.starts_with("0X"))
                && last
                    .get(2..)
                    .is_some_and(|r| r.bytes().all(|b| b.is_ascii_hexdigit()))))
}

/// Percent-decodes, IDNA-maps (UTS 46) to ASCII, lowercases and strips trailing dots.
fn normalize_domain(host: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(host)
        .decode_utf8()
        .ok()?;
    if decoded
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let ascii = idna::domain_to_ascii(&decoded).ok()?;
    let trimmed = ascii.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.contains(['/', '@', ':', '[', ']', '?', '#', '%']) {
        return None;
    }
    Some(trimmed.to_owned())
}

/// A URL that passed §5.6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedUrl {
    /// Lowercased scheme (`""` for scheme-relative and bare-host candidates).
    pub scheme: String,
    /// Normalized host (IP literals in canonical text form).
    pub host: String,
    /// The host as an address, when it is an IP literal.
    pub ip: Option<IpAddr>,
    /// Explicit port, else the scheme's default.
    pub port: Option<u16>,
}

fn endpoint(host: &str, detail: EndpointDetail) -> PolicyError {
    PolicyError::NetworkEndpointDenied {
        host: host.to_owned(),
        detail,
    }
}

/// The raw authority of `scheme://authority/...` (or `//authority`).
fn raw_authority(s: &str) -> Option<&str> {
    let i = s.find("//")?;
    let rest = s.get(i + 2..)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(..end)
}

fn ambiguous(authority: &str) -> bool {
    authority
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
        || percent_encoding::percent_decode_str(authority)
            .decode_utf8_lossy()
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

/// The scheme of `s` if it starts with `scheme:` (RFC 3986 syntax), lowercased.
pub(crate) fn scheme_of(s: &str) -> Option<String> {
    let (head, _) = s.split_once(':')?;
    let mut b = head.bytes();
    (b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c)))
    .then(|| head.to_ascii_lowercase())
}

impl PolicySet {
    /// Whether network egress is allowed at all (`network_egress_policy = allow`).
    pub fn egress_allowed(&self) -> bool {
        self.opts.network_egress_policy == EgressPolicy::Allow
    }

    /// Ports commands may connect to under egress `allow` (SPEC §6.2): the default ports of the
    /// allowed schemes and every port pinned by an allowlist entry; sorted, unique.
    pub fn allowed_ports(&self) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .opts
            .network_allowed_schemes
            .iter()
            .filter_map(|s| {
                url::Url::parse(&format!("{s}://h"))
                    .ok()?
                    .port_or_known_default()
            })
            .chain(self.allow_entries.iter().filter_map(AllowEntry::port))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The compiled allowlist entries.
    pub fn network_allow_entries(&self) -> &[AllowEntry] {
        &self.allow_entries
    }

    /// §5.6 step 4 for a resolved address: blocked ranges unless an IP/CIDR allowlist entry
    /// covers it. `http.fetch` calls this on every DNS answer.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), PolicyError> {
        let ip = canonical_ip(ip);
        if is_blocked_ip(ip) && !self.ip_entry_covers(ip) {
            return Err(endpoint(&ip.to_string(), EndpointDetail::BlockedRange));
        }
        Ok(())
    }

    fn ip_entry_covers(&self, ip: IpAddr) -> bool {
        self.allow_entries
            .iter()
            .any(|e| matches!(e, AllowEntry::Ip { net, .. } if net.contains(ip)))
    }

    /// §5.6 steps 2–5 for a normalized host / IP and effective port.
    fn check_host(
        &self,
        host: &str,
        ip: Option<IpAddr>,
        port: Option<u16>,
    ) -> Result<(), PolicyError> {
        match ip {
            Some(ip) => self.check_ip(ip)?,
            None if is_blocked_name(host) => {
                return Err(endpoint(host, EndpointDetail::BlockedRange));
            }
            None => {}
        }
        if self.allow_entries.iter().any(|e| e.admits(host, ip, port)) {
            Ok(())
        } else {
            Err(endpoint(host, EndpointDetail::NotInAllowlist))
        }
    }

    /// Checks a URL (or scheme-relative `//host…`) against §5.6: scheme, authority, host
    /// normalization, IP notations, blocked ranges, allowlist. Does not look at the egress
    /// policy (see [`PolicySet::egress_allowed`]).
    pub fn check_url(&self, raw: &str) -> Result<CheckedUrl, PolicyError> {
        let s = raw.trim();
        let (scheme, to_parse) = if s.starts_with("//") {
            (String::new(), std::borrow::Cow::Owned(format!("http:{s}")))
        } else {
            let scheme = scheme_of(s).ok_or_else(|| endpoint(s, EndpointDetail::InvalidHost))?;
            if !self.opts.network_allowed_schemes.contains(&scheme) {
                return Err(PolicyError::NetworkProtocolDenied {
                    scheme,
                    location: String::new(),
                });
            }
            (scheme, std::borrow::Cow::Borrowed(s))
        };
        let Some(auth) = raw_authority(&to_parse) else {
            return Err(endpoint(s, EndpointDetail::InvalidHost));
        };
        if ambiguous(auth) {
            return Err(endpoint(auth, EndpointDetail::AmbiguousAuthority));
        }
        // WHATWG skips extra slashes (`http:///x` → host `x`); an empty authority is no host.
        let host_part = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
        if host_part.is_empty() || host_part.starts_with(':') {
            return Err(endpoint("", EndpointDetail::InvalidHost));
        }
        let u = url::Url::parse(&to_parse).map_err(|_| endpoint(s, EndpointDetail::InvalidHost))?;
        let port = u.port_or_known_default();
        let (host, ip) = match u.host() {
            None => return Err(endpoint("", EndpointDetail::InvalidHost)),
            Some(url::Host::Ipv4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
            Some(url::Host::Ipv6(a)) => {
                let c = canonical_ip(IpAddr::V6(a));
                (c.to_string(), Some(c))
            }
            Some(url::Host::Domain(d)) => self.host_parts(d)?,
        };
        self.check_host(&host, ip, port)?;
        Ok(CheckedUrl {
            scheme,
            host,
            ip,
            port,
        })
    }

    fn host_parts(&self, d: &str) -> Result<(String, Option<IpAddr>), PolicyError> {
        if d.is_empty() {
            return Err(endpoint("", EndpointDetail::InvalidHost));
        }
        let name = normalize_domain(d).ok_or_else(|| endpoint(d, EndpointDetail::InvalidHost))?;
        if looks_numeric(&name) {
            let ip =
                parse_ip_literal(&name).ok_or_else(|| endpoint(d, EndpointDetail::InvalidHost))?;
            return Ok((ip.to_string(), Some(ip)));
        }
        Ok((name, None))
    }

    /// Checks a scheme-less `host[:port]` candidate (network keys of heuristic scans, `host`
    /// locations). Without a port, any entry port pin fails to match.
    pub fn check_host_str(&self, raw: &str) -> Result<CheckedUrl, PolicyError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(endpoint("", EndpointDetail::InvalidHost));
        }
        if ambiguous(s) {
            return Err(endpoint(s, EndpointDetail::AmbiguousAuthority));
        }
        if s.contains(':') && !s.starts_with('[') && s.matches(':').count() >= 2 {
            // bare IPv6
            let ip = parse_ip_literal(s).ok_or_else(|| endpoint(s, EndpointDetail::InvalidHost))?;
            self.check_host(&ip.to_string(), Some(ip), None)?;
            return Ok(CheckedUrl {
                scheme: String::new(),
                host: ip.to_string(),
                ip: Some(ip),
                port: None,
            });
        }
        let u = url::Url::parse(&format!("http://{s}"))
            .map_err(|_| endpoint(s, EndpointDetail::InvalidHost))?;
        // `Url::port` hides a port equal to the scheme default: `example.com:80` still names
        // port 80 (and matches an `example.com:80` entry).
        let explicit = s.rsplit_once(':').is_some_and(|(head, p)| {
            !head.is_empty()
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!head.contains(':') || head.ends_with(']'))
        });
        let port = if explicit {
            u.port_or_known_default()
        } else {
            u.port()
        };
        let (host, ip) = match u.host() {
            None => return Err(endpoint("", EndpointDetail::InvalidHost)),
            Some(url::Host::Ipv4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
            Some(url::Host::Ipv6(a)) => {
                let c = canonical_ip(IpAddr::V6(a));
                (c.to_string(), Some(c))
            }
            Some(url::Host::Domain(d)) => self.host_parts(d)?,
        };
        self.check_host(&host, ip, port)?;
        Ok(CheckedUrl {
            scheme: String::new(),
            host,
            ip,
            port,
        })
    }
}

#[cfg(test)]
mod tests;
