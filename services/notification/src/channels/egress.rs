//! Where webhooks may go. A firm types the URL, so without a check a webhook could reach
//! arflow's own services or the cloud metadata endpoint (SSRF). Unless
//! `notification.allow_private_targets` (local development), targets must be public: IP
//! literals are checked when subscribing and sending, names when resolving (a custom resolver,
//! so a DNS answer that changes between the check and the connection cannot slip through).
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// False for loopback, private, link-local (metadata), CGNAT, unspecified, multicast and
/// unique-local addresses.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
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
        || (a == 100 && (64..128).contains(&b)))
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
            "localhost",
            "api.localhost",
        ] {
            assert!(refuse_host(host).is_some(), "{host}");
        }
        for host in ["8.8.8.8", "hooks.slack.com", "[2606:4700::1111]"] {
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
