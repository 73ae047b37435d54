//! Where webhooks may go. A firm types the URL, so without a check a webhook could reach
//! arflow's own services or the cloud metadata endpoint (SSRF). Unless
//! `notification.allow_private_targets` (local development), targets must be public: IP
//! literals are checked when subscribing and sending, names when resolving (a custom resolver,
//! so a DNS answer that changes between the check and the connection cannot slip through).
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// False for loopback, private, link-local (metadata), CGNAT, unspecified, multicast,
/// reserved and unique-local addresses, and for IPv6 addresses that carry one of those IPv4
/// addresses (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => public_v4(v4) && public_v6(v6),
            None => public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address reaches, when it carries one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(last(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(last(hi, lo)),
        [0x2002, hi, lo, ..] => Some(last(hi, lo)),
        _ => None,
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

/// Why `host` may not be a target, when it is an address or `localhost`; names are checked
/// when they resolve.
pub fn refuse_host(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return Some(format!("{host} is not a public address"));
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Some(format!("{host} is not a public address")),
        _ => None,
    }
}

/// Resolves names and keeps only public addresses.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "[::1]",
            "[fd00::1]",
            "[fe80::1]",
            "[::ffff:127.0.0.1]",
            "[::127.0.0.1]",
            "[64:ff9b::a9fe:a9fe]",
            "[2002:a9fe:a9fe::1]",
            "[2002:7f00:1::]",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.170",
            "localhost",
            "api.localhost",
        ] {
            assert!(refuse_host(host).is_some(), "{host}");
        }
        for host in ["8.8.8.8", "hooks.slack.com", "[2606:4700::1111]", "[64:ff9b::808:808]", "[2002:808:808::1]"] {
            assert!(refuse_host(host).is_none(), "{host}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_when_connecting() {
        let err = PublicOnly.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("no public address"), "{err}");
    }

    #[tokio::test]
    async fn a_private_target_fails_at_send_time_too() {
        let mut config: crate::Config =
            arflow_runtime::config::load_defaults(include_str!("../../config/default.toml")).unwrap();
        config.notification.allow_private_targets = false;
        let channels = super::super::Channels::new(&config).unwrap();
        let claimed = crate::store::Claimed {
            id: uuid::Uuid::now_v7(),
            firm_id: uuid::Uuid::now_v7(),
            subscription_id: uuid::Uuid::now_v7(),
            kind: "opt_out".into(),
            event_id: uuid::Uuid::now_v7(),
            correlation_id: uuid::Uuid::now_v7(),
            message: serde_json::json!({}),
            attempts: 0,
            channel: "slack".into(),
            target: "http://169.254.169.254/latest/meta-data".into(),
            secret: None,
        };
        match channels.send(&claimed).await {
            super::super::Outcome::Failed { failure, error, .. } => {
                assert_eq!(failure, super::super::Failure::Permanent);
                assert!(error.contains("not a public address"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
