//! The client's address, decided once per request: the connecting peer, or —
//! when `rate_limit.trust_forwarded_for` is on and the peer is one of
//! `rate_limit.trusted_proxies` — the rightmost X-Forwarded-For entry that is
//! not itself a trusted proxy. The leftmost entries are whatever the client
//! wrote, so they are never believed. Rate limits and logs use this address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The address `layer` decided on; None only without a peer (in-process calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// Who may say who the client is.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    pub trust_forwarded_for: bool,
    pub nets: Vec<IpNet>,
}

impl Proxies {
    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let p = canonical(peer?);
        if !self.trust_forwarded_for || !self.trusted(p) {
            return Some(p);
        }
        // Every X-Forwarded-For header, in order, as one list; read from the right.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = p;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.trusted(ip) => client = ip,
                Some(ip) => return Some(ip),
                // Garbage written by someone: stop at the last address we trust.
                None => return Some(client),
            }
        }
        Some(client)
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip())).map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Decides the client address, stores it for handlers, records it on the
/// request's log span, and hands it (with the user agent and request id) to
/// the audit events the request records.
pub async fn layer(State(proxies): State<Arc<Proxies>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = proxies.client_ip(req.headers(), peer);
    if let Some(ip) = ip {
        tracing::Span::current().record("client_ip", tracing::field::display(ip));
    }
    req.extensions_mut().insert(ClientIp(ip));
    let ctx = crate::audit::Context {
        ip: ip.map(|i| i.to_string()),
        user_agent: header(req.headers(), &axum::http::header::USER_AGENT, 256),
        request_id: header(req.headers(), &super::REQUEST_ID, 64),
    };
    crate::audit::scope(ctx, next.run(req)).await
}

fn header(h: &HeaderMap, name: &axum::http::HeaderName, max: usize) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(max).collect())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ClientIp>().copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Proxies {
        let nets = ["127.0.0.0/8", "10.0.0.0/8"].iter().map(|n| n.parse().unwrap()).collect();
        Proxies { trust_forwarded_for: true, nets }
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn rightmost_untrusted_hop_from_a_trusted_peer() {
        let p = proxies();
        let lb: IpAddr = "10.0.0.5".parse().unwrap();
        // The spoof from the review: the client writes the leftmost entries.
        assert_eq!(p.client_ip(&xff("203.0.113.9, 127.0.0.1, 198.51.100.7"), Some(lb)), "198.51.100.7".parse().ok());
        assert_eq!(p.client_ip(&xff("198.51.100.7, 10.0.0.9"), Some(lb)), "198.51.100.7".parse().ok());
        assert_eq!(p.client_ip(&xff("[2001:db8::1]:443"), Some(lb)), "2001:db8::1".parse().ok());
        assert_eq!(p.client_ip(&xff("nonsense, 10.0.0.9"), Some(lb)), "10.0.0.9".parse().ok());
        assert_eq!(p.client_ip(&HeaderMap::new(), Some(lb)), Some(lb));
    }

    #[test]
    fn untrusted_peer_or_switch_off_means_the_peer() {
        let p = proxies();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(p.client_ip(&xff("1.2.3.4"), Some(stranger)), Some(stranger));
        let off = Proxies { trust_forwarded_for: false, ..proxies() };
        let lb: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(off.client_ip(&xff("1.2.3.4"), Some(lb)), Some(lb));
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(p.client_ip(&xff("1.2.3.4"), Some(mapped)), "1.2.3.4".parse().ok());
    }
}
