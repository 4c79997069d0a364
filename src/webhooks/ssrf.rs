//! Where a webhook may point: `http(s)` URLs whose every address is public, unless
//! `WEBHOOK_ALLOW_PRIVATE` (development, tests). Checked when an endpoint is saved and again
//! at every delivery, whose connection then goes to the addresses checked here (so a DNS
//! answer that changes in between — rebinding — cannot reach a private address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

pub const MAX_URL_LEN: usize = 2048;

/// The URL's syntax and scheme. `https_only` in production without `WEBHOOK_ALLOW_PRIVATE`.
pub fn parse(text: &str, https_only: bool) -> Result<Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|_| "must be an absolute http(s) URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        "http" => return Err("must use https".into()),
        _ => return Err("must be an http(s) URL".into()),
    }
    if url.host().is_none() {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

/// Every address `url` resolves to; with `allow_private` false, refused if any of them is not
/// a public unicast address.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(_)) | Err(_) => return Err(format!("the host {name} does not resolve")),
            }
        }
        None => return Err("must name a host".into()),
    };
    vet(addrs, allow_private)
}

/// The answer of a lookup, refused when empty or, with `allow_private` false, when any address
/// in it is not public: a name with one public and one private address is refused, since the
/// connection could go to either.
fn vet(addrs: Vec<SocketAddr>, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    if addrs.is_empty() {
        return Err("the host does not resolve".into());
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "resolves to {}, which is not a public address",
            bad.ip()
        ));
    }
    Ok(addrs)
}

/// Loopback, private, link-local (metadata services included), unique-local, unspecified,
/// multicast, broadcast, CGNAT, reserved; and IPv6 forms that embed such an IPv4 address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d) embed IPv4.
    let embedded = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0])
        || (segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified())
    {
        return forbidden_v4(embedded);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254 included)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::10.0.0.1",
        ] {
            assert!(is_forbidden(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_forbidden(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn urls_need_http_or_https_and_https_in_production() {
        assert!(parse("https://example.com/hook", true).is_ok());
        assert!(parse("http://example.com/hook", false).is_ok());
        assert!(parse("http://example.com/hook", true).is_err());
        assert!(parse("ftp://example.com/hook", false).is_err());
        assert!(parse("https://user:pw@example.com/", false).is_err());
        assert!(parse("/relative", false).is_err());
    }

    #[tokio::test]
    async fn resolution_checks_every_address() {
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert!(resolve(&url, false).await.is_err());
        assert!(resolve(&url, true).await.is_ok());
        let url = Url::parse("http://localhost:9/").unwrap();
        assert!(resolve(&url, false).await.is_err());
        let url = Url::parse("http://[::ffff:a9fe:a9fe]/").unwrap();
        assert!(resolve(&url, false).await.is_err());
    }

    /// What a DNS answer for an attacker's name can hold (no resolver on this machine answers
    /// such names, so the answers are given here; `localhost` above goes through the real one).
    #[test]
    fn a_name_answering_with_any_private_address_is_refused() {
        let answer = |ips: &[&str]| -> Vec<SocketAddr> {
            ips.iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), 443))
                .collect()
        };
        for ips in [
            &["10.0.0.1"][..],
            &["169.254.169.254"],
            &["127.0.0.1"],
            &["93.184.216.34", "10.0.0.1"],
            &["2606:4700:4700::1111", "fd00:ec2::254"],
        ] {
            let err = vet(answer(ips), false).unwrap_err();
            assert!(err.contains("not a public address"), "{ips:?}: {err}");
            assert_eq!(vet(answer(ips), true).unwrap(), answer(ips));
        }
        assert!(vet(answer(&["93.184.216.34", "1.1.1.1"]), false).is_ok());
        assert!(vet(Vec::new(), true).is_err());
    }
}
