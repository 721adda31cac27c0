//! Which addresses OAuth requests may reach.
//!
//! The endpoints of an authorization come from metadata a server publishes, so a hostile or
//! compromised server could point them anywhere, including at services inside the client's
//! network. The rule, as rmcp's own OAuth client applies it: a public address is always fine;
//! a loopback or private address only when the MCP server itself is at an address of that
//! class (an IP literal of it, or `localhost`); link-local (cloud instance metadata),
//! unspecified, multicast, broadcast and reserved addresses never. Names are resolved and every
//! answer is filtered, so a name cannot lead where a literal may not, and the MCP server's own
//! name cannot be rebound to an internal address either.

use std::net::{IpAddr, SocketAddr};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};
use url::Host;

/// What kind of address an IP is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    Public,
    Loopback,
    Private,
    /// Never reachable by OAuth requests.
    Blocked,
}

impl AddressClass {
    pub(crate) fn of(ip: IpAddr) -> AddressClass {
        // An IPv4 address inside IPv6 (mapped or compatible) is judged as IPv4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                if v4.is_loopback() {
                    AddressClass::Loopback
                } else if v4.is_private() || (a == 100 && (64..=127).contains(&b)) {
                    // RFC 1918 and the shared address space of carrier-grade NAT.
                    AddressClass::Private
                } else if v4.is_unspecified()
                    || v4.is_link_local()
                    || v4.is_broadcast()
                    || v4.is_multicast()
                    || v4.is_documentation()
                    || a == 0
                    || a >= 240
                    || (a == 192 && b == 0)
                    || (a == 198 && (18..=19).contains(&b))
                {
                    AddressClass::Blocked
                } else {
                    AddressClass::Public
                }
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                if v6.is_loopback() {
                    AddressClass::Loopback
                } else if v6.is_unique_local() {
                    AddressClass::Private
                } else if v6.is_unspecified()
                    || v6.is_unicast_link_local()
                    || v6.is_multicast()
                    || (first & 0xe000) != 0x2000
                    || first == 0x2001 && v6.segments()[1] == 0x0db8
                {
                    // Only global unicast (2000::/3) is public; documentation is not.
                    AddressClass::Blocked
                } else {
                    AddressClass::Public
                }
            }
        }
    }
}

/// The address policy for one MCP server's OAuth requests.
#[derive(Debug, Clone)]
pub(crate) struct AddressPolicy {
    /// The classes beyond public that the MCP server's own address allows.
    allowed: Vec<AddressClass>,
    /// The MCP server's own IP literal, always reachable.
    server_ip: Option<IpAddr>,
}

impl AddressPolicy {
    /// The policy for the MCP server at `server`.
    pub(crate) fn for_server(server: &Url) -> AddressPolicy {
        let server_ip = literal_ip(server);
        let allowed = match (server.host(), server_ip) {
            (_, Some(ip)) => match AddressClass::of(ip) {
                class @ (AddressClass::Loopback | AddressClass::Private) => vec![class],
                AddressClass::Public | AddressClass::Blocked => Vec::new(),
            },
            (Some(Host::Domain(name)), None)
                if name.trim_end_matches('.').eq_ignore_ascii_case("localhost") =>
            {
                vec![AddressClass::Loopback]
            }
            _ => Vec::new(),
        };
        AddressPolicy { allowed, server_ip }
    }

    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        match AddressClass::of(ip) {
            AddressClass::Public => true,
            AddressClass::Blocked => false,
            class => self.allowed.contains(&class),
        }
    }

    /// Whether a URL may be requested as far as its host shows: IP literals are judged here,
    /// because nothing resolves them; names are judged when they resolve.
    pub(crate) fn allows_url(&self, url: &Url) -> bool {
        match literal_ip(url) {
            Some(ip) => self.server_ip == Some(ip) || self.allows(ip),
            None => true,
        }
    }
}

/// A resolver that keeps only the answers the policy allows.
#[derive(Debug, Clone)]
pub(crate) struct FilteringResolver(pub(crate) std::sync::Arc<AddressPolicy>);

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let answers: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = answers
                .into_iter()
                .filter(|addr| policy.allows(addr.ip()))
                .collect();
            if allowed.is_empty() {
                tracing::warn!(%host, "no address of this host may be reached by OAuth requests from this server");
                return Err(format!(
                    "no address of `{host}` may be reached by OAuth requests from this server"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> AddressClass {
        AddressClass::of(ip.parse().expect("an IP"))
    }

    fn policy(server: &str) -> AddressPolicy {
        AddressPolicy::for_server(&Url::parse(server).expect("a URL"))
    }

    #[test]
    fn addresses_are_classified() {
        for ip in ["8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
        for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(class(ip), AddressClass::Loopback, "{ip}");
        }
        for ip in [
            "10.0.0.9",
            "172.16.1.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(class(ip), AddressClass::Private, "{ip}");
        }
        for ip in [
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "fe80::1",
            "::",
            "ff02::1",
            "2001:db8::1",
            "::ffff:169.254.169.254",
        ] {
            assert_eq!(class(ip), AddressClass::Blocked, "{ip}");
        }
    }

    #[test]
    fn a_public_server_reaches_only_public_addresses() {
        let public = policy("https://mcp.example.com/mcp");
        assert!(public.allows("1.1.1.1".parse().expect("a valid test value")));
        for ip in ["127.0.0.1", "10.0.0.1", "169.254.169.254"] {
            assert!(
                !public.allows(ip.parse().expect("a valid test value")),
                "{ip}"
            );
        }
        assert!(
            !public.allows_url(
                &Url::parse("http://127.0.0.1:8080/token").expect("a valid test value")
            )
        );
        assert!(public.allows_url(
            &Url::parse("https://auth.example.com/token").expect("a valid test value")
        ));
    }

    #[test]
    fn a_loopback_server_reaches_loopback_but_not_private_or_link_local() {
        for server in ["http://localhost:3000/mcp", "http://127.0.0.1:3000/mcp"] {
            let local = policy(server);
            assert!(
                local.allows("127.0.0.1".parse().expect("a valid test value")),
                "{server}"
            );
            assert!(
                local.allows("::1".parse().expect("a valid test value")),
                "{server}"
            );
            assert!(
                !local.allows("192.168.0.1".parse().expect("a valid test value")),
                "{server}"
            );
            assert!(
                !local.allows("169.254.169.254".parse().expect("a valid test value")),
                "{server}"
            );
        }
    }

    #[test]
    fn a_private_server_reaches_private_but_not_loopback() {
        let private = policy("http://10.1.2.3:8080/mcp");
        assert!(private.allows("192.168.1.1".parse().expect("a valid test value")));
        assert!(!private.allows("127.0.0.1".parse().expect("a valid test value")));
        assert!(
            private
                .allows_url(&Url::parse("http://10.1.2.3:9000/token").expect("a valid test value"))
        );
    }
}
