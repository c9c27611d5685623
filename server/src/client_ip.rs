//! The client's address as the per-address limits and the session records see it.
//!
//! Directly connected, the client is the TCP peer. Behind a load balancer every connection
//! comes from the balancer, so a balancer named in [`crate::Config::trusted_proxies`] passes
//! the client on in `X-Forwarded-For`: each proxy appends the address it got the request from,
//! so the client is the rightmost entry that is not itself a trusted proxy. Entries further
//! left were written by whoever sent the request and prove nothing. The header of a peer that
//! is not a trusted proxy is ignored, and so is a malformed one (the peer is the client then).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::{ApiError, AppState};

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| ApiError::Internal("the connection's peer address is missing".into()))?;
        Ok(ClientIp(client_ip(peer.ip(), &parts.headers, &state.trusted_proxies)))
    }
}

/// The client behind `peer`, given the request's headers and the proxies trusted to say.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|t| t.to_canonical() == *ip);
    if !trusted(&peer) {
        return peer;
    }
    // Repeated headers are one list, in order; one malformed entry spoils the list.
    let mut entries = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        let Some(parsed) =
            value.to_str().ok().and_then(|text| text.split(',').map(parse_entry).collect::<Option<Vec<_>>>())
        else {
            return peer;
        };
        entries.extend(parsed);
    }
    let mut client = peer;
    for ip in entries.into_iter().rev() {
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`1.2.3.4:5`,
/// `[::1]:5`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    const BALANCER: &str = "10.0.0.2";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &spoofed, &[]), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("198.51.100.1"), &spoofed, &[ip(BALANCER)]), ip("198.51.100.1"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_client_is_the_rightmost_untrusted_entry() {
        let trusted = [ip(BALANCER), ip("10.0.0.3")];
        // The client claims to be 192.0.2.1; the balancer saw 203.0.113.9; an inner proxy
        // (trusted) passed it on.
        let forwarded = headers(&["192.0.2.1, 203.0.113.9", "10.0.0.3"]);
        assert_eq!(client_ip(ip(BALANCER), &forwarded, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip(BALANCER), &headers(&["203.0.113.9:4711"]), &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip(BALANCER), &headers(&["[2001:db8::1]:443"]), &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn without_a_usable_header_the_trusted_peer_is_the_client() {
        let trusted = [ip(BALANCER)];
        assert_eq!(client_ip(ip(BALANCER), &HeaderMap::new(), &trusted), ip(BALANCER));
        for malformed in ["not-an-address", "203.0.113.9, ", "203.0.113.9,,10.0.0.2", "garbage, 203.0.113.9", ""] {
            assert_eq!(client_ip(ip(BALANCER), &headers(&[malformed]), &trusted), ip(BALANCER), "{malformed:?}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let trusted = [ip(BALANCER)];
        assert_eq!(client_ip(ip("::ffff:10.0.0.2"), &headers(&["::ffff:203.0.113.9"]), &trusted), ip("203.0.113.9"));
    }
}
