//! Which browser origins may open a socket (SEC-3).
//!
//! "Same origin" means the hub's own origin as configured
//! (`server.public_url`), or else the address the server is bound to, never
//! the request's `Host` header, which a page under a rebinding DNS name
//! controls. On a loopback address (or bound to every address),
//! `localhost`, `127.0.0.1` and `[::1]` at the bound port all name the hub;
//! any other name needs `public_url`. Only `http` and `https` origins can be
//! the same origin; anything else must be listed in `allowed_origins`
//! (exactly), or allowed with `*`. A request without `Origin` (not from a
//! browser) is allowed: credentials decide for it.

use std::net::SocketAddr;

/// An origin: scheme, host (lowercase) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is ignored); the port
    /// defaults to 80 for `http` and 443 for `https`. `None` for anything
    /// else, paths included.
    pub(crate) fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.trim_end_matches('/').split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(bracketed) => {
                let (address, after) = bracketed.split_once(']')?;
                let port = match after {
                    "" => None,
                    after => Some(after.strip_prefix(':')?.parse::<u16>().ok()?),
                };
                (format!("[{address}]"), port)
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port.parse::<u16>().ok()?)),
                None => (rest.to_owned(), None),
            },
        };
        let port = port.or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// An `http` or `https` origin.
    pub(crate) fn is_web(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https")
    }
}

/// What the hub is, for the same-origin check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HubOrigin {
    /// Configured: `server.public_url`.
    Public(Origin),
    /// Not configured: the address the server is bound to.
    Bound(SocketAddr),
    /// No server at all (an in-memory socket): no web origin is the hub's
    /// own, only `server.allowed_origins` are allowed.
    InProcess,
}

impl std::fmt::Display for HubOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubOrigin::Public(public) => {
                write!(
                    f,
                    "{}://{}:{} (server.public_url)",
                    public.scheme, public.host, public.port
                )
            }
            HubOrigin::Bound(addr) => write!(f, "the bound address {addr}"),
            HubOrigin::InProcess => f.write_str("none: an in-process socket"),
        }
    }
}

impl HubOrigin {
    /// Whether `origin` is the hub's own.
    fn is(&self, origin: &Origin) -> bool {
        if !origin.is_web() {
            return false;
        }
        match self {
            HubOrigin::Public(public) => public == origin,
            HubOrigin::Bound(addr) => {
                if origin.port != addr.port() {
                    return false;
                }
                let host = origin.host.trim_start_matches('[').trim_end_matches(']');
                if addr.ip().is_loopback() || addr.ip().is_unspecified() {
                    // Bound to every address, the hub knows only its
                    // loopback names for sure: others need `public_url`.
                    return matches!(host, "localhost" | "127.0.0.1" | "::1");
                }
                host.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip == addr.ip())
            }
            HubOrigin::InProcess => false,
        }
    }
}

/// Whether a request with `Origin: origin` may open a socket on a hub that
/// is `hub`, given `allowed` (`server.allowed_origins`).
pub(crate) fn origin_allowed(origin: Option<&str>, hub: &HubOrigin, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let listed = allowed.iter().any(|entry| {
        entry == "*"
            || entry
                .trim_end_matches('/')
                .eq_ignore_ascii_case(origin.trim_end_matches('/'))
    });
    listed || Origin::parse(origin).is_some_and(|origin| hub.is(&origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(addr: &str) -> HubOrigin {
        HubOrigin::Bound(addr.parse().expect("addr"))
    }

    #[test]
    fn origins_parse_with_their_default_ports() {
        let parsed = Origin::parse("HTTPS://App.Example/").expect("origin");
        assert_eq!((parsed.host.as_str(), parsed.port), ("app.example", 443));
        assert_eq!(Origin::parse("http://a:8080").map(|o| o.port), Some(8080));
        assert_eq!(
            Origin::parse("http://[::1]:4000").map(|o| o.port),
            Some(4000)
        );
        assert_eq!(Origin::parse("http://[::1]").map(|o| o.port), Some(80));
        assert_eq!(Origin::parse("http://a/path"), None);
        assert_eq!(Origin::parse("http://a:port"), None);
        assert_eq!(Origin::parse("ftp://a"), None, "no default port");
        assert_eq!(Origin::parse("null"), None);
    }

    #[test]
    fn the_bound_address_is_the_same_origin_not_the_host_header() {
        let hub = bound("127.0.0.1:4000");
        for same in [
            "http://127.0.0.1:4000",
            "http://localhost:4000",
            "http://[::1]:4000",
        ] {
            assert!(origin_allowed(Some(same), &hub, &[]), "{same}");
        }
        // A rebinding name resolving to the hub is not the hub's origin.
        assert!(!origin_allowed(Some("http://evil.example:4000"), &hub, &[]));
        assert!(!origin_allowed(Some("http://localhost:4001"), &hub, &[]));
        assert!(!origin_allowed(Some("ftp://127.0.0.1:4000"), &hub, &[]));
        assert!(!origin_allowed(
            Some("chrome-extension://abcdef"),
            &hub,
            &[]
        ));
        assert!(origin_allowed(None, &hub, &[]), "not from a browser");
        let everywhere = bound("0.0.0.0:4000");
        assert!(origin_allowed(
            Some("http://localhost:4000"),
            &everywhere,
            &[]
        ));
        assert!(!origin_allowed(
            Some("http://10.0.0.5:4000"),
            &everywhere,
            &[]
        ));
        let public = bound("10.0.0.5:4000");
        assert!(origin_allowed(Some("http://10.0.0.5:4000"), &public, &[]));
        assert!(!origin_allowed(Some("http://localhost:4000"), &public, &[]));
    }

    #[test]
    fn a_public_url_is_the_same_origin_when_configured() {
        let hub = HubOrigin::Public(Origin::parse("https://chat.example.com").expect("origin"));
        assert!(origin_allowed(Some("https://chat.example.com"), &hub, &[]));
        assert!(origin_allowed(
            Some("https://chat.example.com:443/"),
            &hub,
            &[]
        ));
        assert!(!origin_allowed(Some("http://chat.example.com"), &hub, &[]));
        assert!(!origin_allowed(Some("https://evil.example"), &hub, &[]));
    }

    #[test]
    fn listed_origins_and_the_star_are_allowed_whatever_the_scheme() {
        let hub = bound("127.0.0.1:4000");
        let listed = vec![
            "chrome-extension://abcdef".to_owned(),
            "https://app.example/".to_owned(),
        ];
        assert!(origin_allowed(
            Some("chrome-extension://abcdef"),
            &hub,
            &listed
        ));
        assert!(origin_allowed(Some("https://app.example"), &hub, &listed));
        assert!(!origin_allowed(
            Some("https://other.example"),
            &hub,
            &listed
        ));
        let star = vec!["*".to_owned()];
        assert!(origin_allowed(Some("http://any.where"), &hub, &star));
    }
}
