//! Who may call what: the one place that decides, for the HTTP API and the WebSocket event
//! stream alike, so the two cannot drift apart (they once did: the stream refused
//! `Authorization: bearer …` that the API accepted).
//!
//! - Admin endpoints and the event stream take `server.admin_token` as
//!   `Authorization: Bearer <token>` (the scheme in any case, as RFC 7235 says); the event
//!   stream also as `?token=`, because browsers cannot set headers on a WebSocket. With no
//!   token configured they answer local callers only ("loopback trust"), and then only a
//!   request a browser page on another site cannot have made: see [`admin`].
//! - Ingest takes `ingest.token` as `?token=` or `X-Webhook-Token` when one is set.
//!
//! Callers describe a request through [`Caller`] (peer address, headers, query), so a rule
//! that looks at more of the request (forwarding headers, `Host`, `Origin`) is added here,
//! in [`admin`]'s loopback trust or beside it, and holds for both at once. This module
//! imports nothing from the crate but [`crate::base::cidr`]: it sits below both callers.

use std::net::{IpAddr, SocketAddr};

use crate::base::cidr::Cidr;

/// The parts of a request the access rules read.
pub trait Caller {
    /// The peer's address as the socket reports it.
    fn peer(&self) -> Option<SocketAddr>;
    /// A header's value; the name is matched without regard to case.
    fn header(&self, name: &str) -> Option<&str>;
    /// A query parameter, decoded (the first one when it is given twice).
    fn query(&self, name: &str) -> Option<&str>;
    /// The request method as sent (`GET` for a WebSocket handshake). Methods are
    /// case-sensitive: `get` is not `GET`.
    fn method(&self) -> &str;
}

/// Headers a reverse proxy adds: a loopback peer sending one is a proxy relaying someone
/// else, not a local operator.
pub const FORWARDING_HEADERS: &[&str] = &["Forwarded", "X-Forwarded-For", "X-Real-IP"];

/// Which door an admin request came through: the difference is where the token may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The HTTP admin API: the token only in `Authorization`, where proxies and logs treat it
    /// as a secret.
    Api,
    /// The WebSocket event stream: `?token=` first, then `Authorization`.
    EventStream,
}

/// Why a request is refused. Each caller words the answer in its own protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token is configured and the caller is not local.
    LocalOnly,
    /// A token is configured and none was given.
    TokenMissing,
    /// A token was given and it is not the configured one.
    TokenWrong,
    /// No token is configured, and a loopback peer carries forwarding headers: a proxy on
    /// this host relaying a remote client.
    Forwarded,
    /// No token is configured, and `Host` names neither a loopback host nor one in
    /// `server.allowed_hosts` (a page on another site reached us by DNS rebinding).
    ForeignHost,
    /// No token is configured, and a state-changing request or a WebSocket handshake carries
    /// an `Origin` of another host (a page on another site made the browser send it).
    CrossOrigin,
}

impl Denied {
    /// The rule's name, as the `error` code of a refusal.
    pub fn code(self) -> &'static str {
        match self {
            Denied::LocalOnly => "forbidden",
            Denied::TokenMissing | Denied::TokenWrong => "unauthorized",
            Denied::Forwarded => "forwarded_request",
            Denied::ForeignHost => "foreign_host",
            Denied::CrossOrigin => "cross_origin",
        }
    }
}

/// The admin rule: the token when one is configured (it works from anywhere: a page on
/// another site cannot send it by itself). Without a token, loopback trust: the peer is local
/// (a loopback peer, no forwarding header), `Host` is a loopback host or listed in `allowed_hosts`, and a
/// state-changing request (any method but `GET` and `HEAD` spelled exactly so: see
/// [`is_safe_method`]) or a WebSocket handshake has no `Origin` or one of the same host.
pub fn admin(
    token: Option<&str>,
    allowed_hosts: &[String],
    caller: &impl Caller,
    door: Door,
) -> Result<(), Denied> {
    let Some(token) = token else {
        return loopback_trust(allowed_hosts, caller, door);
    };
    let from_query = match door {
        Door::Api => None,
        Door::EventStream => caller.query("token"),
    };
    let given = from_query.or_else(|| caller.header("Authorization").and_then(bearer));
    check_token(token, given)
}

/// The ingest rule: open when `ingest.token` is unset, else the token as `?token=` or
/// `X-Webhook-Token`.
pub fn ingest(token: Option<&str>, caller: &impl Caller) -> Result<(), Denied> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = caller
        .query("token")
        .or_else(|| caller.header("X-Webhook-Token"));
    check_token(token, given)
}

fn check_token(token: &str, given: Option<&str>) -> Result<(), Denied> {
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(Denied::TokenWrong),
        None => Err(Denied::TokenMissing),
    }
}

fn loopback_trust(
    allowed_hosts: &[String],
    caller: &impl Caller,
    door: Door,
) -> Result<(), Denied> {
    if !is_loopback(caller.peer()) {
        return Err(Denied::LocalOnly);
    }
    if is_forwarded(caller) {
        return Err(Denied::Forwarded);
    }
    // No Host at all is no browser (every browser sends one): nothing to rebind.
    let host = caller.header("Host").map(host_name);
    if let Some(host) = host {
        if !is_loopback_host(host) && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(Denied::ForeignHost);
        }
    }
    let checks_origin = door == Door::EventStream || !is_safe_method(caller.method());
    if checks_origin {
        if let Some(origin) = caller.header("Origin") {
            if !same_host(origin, host) {
                return Err(Denied::CrossOrigin);
            }
        }
    }
    Ok(())
}

/// Whether a request with this method only reads. The list names the safe methods, not the
/// unsafe ones: a method spelled otherwise (`post`, `Post`, one nobody registered) is treated
/// as changing state, so no spelling slips past the Origin check.
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// Whether the request carries any of [`FORWARDING_HEADERS`].
pub fn is_forwarded(caller: &impl Caller) -> bool {
    FORWARDING_HEADERS
        .iter()
        .any(|name| caller.header(name).is_some())
}

/// The host part of a `Host` value (`[::1]:8001` → `[::1]`, `localhost:8001` → `localhost`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _port)| name)
}

/// `localhost`, `127.0.0.1` (any 127/8 address) or `[::1]`, any case.
fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| is_loopback(Some(SocketAddr::new(ip, 0))))
}

/// Whether `origin` (`http://127.0.0.1:8001`) names the same host as the request's `Host`.
/// Ports are not compared: the dashboard, served on the HTTP port, opens the event stream
/// on the WebSocket port. `Origin: null` (a sandboxed or local-file page) is never the same.
fn same_host(origin: &str, host: Option<&str>) -> bool {
    let Some(rest) = origin
        .trim()
        .strip_prefix("http://")
        .or_else(|| origin.trim().strip_prefix("https://"))
    else {
        return false;
    };
    let origin_host = host_name(rest.split('/').next().unwrap_or(rest));
    match host {
        Some(host) => origin_host.eq_ignore_ascii_case(host),
        None => is_loopback_host(origin_host),
    }
}

/// The address the audit trail records for a request: the peer's, or, when the peer is one
/// of `trusted_proxies`, the rightmost address in `X-Forwarded-For` that is not itself a
/// trusted proxy (the hops to its left were written by whoever connected to that proxy, so
/// they prove nothing).
pub fn client_address(caller: &impl Caller, trusted_proxies: &[Cidr]) -> Option<String> {
    let peer = caller.peer()?;
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|c| c.contains(ip));
    if !trusted(peer.ip()) {
        return Some(peer.to_string());
    }
    let Some(forwarded) = caller.header("X-Forwarded-For") else {
        return Some(peer.to_string());
    };
    let mut last_trusted = None;
    for hop in forwarded.rsplit(',').map(str::trim) {
        let Ok(ip) = hop
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            // Not an address: the proxy's word stops here.
            break;
        };
        if !trusted(ip) {
            return Some(ip.to_string());
        }
        last_trusted = Some(ip);
    }
    Some(last_trusted.map_or_else(|| peer.to_string(), |ip| ip.to_string()))
}

/// The credentials of `Authorization: Bearer <token>`, trimmed; `None` for another scheme.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Compares secrets in time that does not depend on where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// IPv4 and IPv6 loopback, including IPv4 loopback mapped into IPv6 (a dual-stack listener
/// sees `127.0.0.1` as `::ffff:127.0.0.1`).
pub fn is_loopback(addr: Option<SocketAddr>) -> bool {
    addr.is_some_and(|a| match a {
        SocketAddr::V4(v4) => v4.ip().is_loopback(),
        SocketAddr::V6(v6) => {
            v6.ip().is_loopback() || v6.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        peer: &'static str,
        method: &'static str,
        headers: Vec<(&'static str, &'static str)>,
        query: Vec<(&'static str, &'static str)>,
    }

    fn from(peer: &'static str) -> Fake {
        Fake {
            peer,
            method: "GET",
            headers: Vec::new(),
            query: Vec::new(),
        }
    }

    impl Fake {
        fn header(mut self, name: &'static str, value: &'static str) -> Fake {
            self.headers.push((name, value));
            self
        }
        fn method(mut self, method: &'static str) -> Fake {
            self.method = method;
            self
        }
        fn query(mut self, name: &'static str, value: &'static str) -> Fake {
            self.query.push((name, value));
            self
        }
    }

    impl Caller for Fake {
        fn peer(&self) -> Option<SocketAddr> {
            self.peer.parse().ok()
        }
        fn header(&self, name: &str) -> Option<&str> {
            let found = self
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            found.map(|(_, v)| *v)
        }
        fn query(&self, name: &str) -> Option<&str> {
            self.query.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
        fn method(&self) -> &str {
            self.method
        }
    }

    const NO_HOSTS: &[String] = &[];

    fn admin(token: Option<&str>, caller: &Fake, door: Door) -> Result<(), Denied> {
        super::admin(token, NO_HOSTS, caller, door)
    }

    const REMOTE: &str = "10.0.0.7:4000";
    const LOCAL: &str = "127.0.0.1:4000";

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1:5".parse().ok()));
        assert!(is_loopback("[::1]:5".parse().ok()));
        assert!(is_loopback("[::ffff:127.0.0.1]:5".parse().ok()));
        assert!(!is_loopback("10.0.0.1:5".parse().ok()));
        assert!(!is_loopback(None));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_trimmed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn both_doors_accept_a_lower_case_bearer_scheme() {
        for door in [Door::Api, Door::EventStream] {
            let caller = from(REMOTE).header("authorization", "bearer s3cret");
            assert_eq!(admin(Some("s3cret"), &caller, door), Ok(()), "{door:?}");
            let caller = from(REMOTE).header("Authorization", "Bearer s3cret");
            assert_eq!(admin(Some("s3cret"), &caller, door), Ok(()), "{door:?}");
        }
    }

    #[test]
    fn admin_token_missing_or_wrong_is_refused_even_from_loopback() {
        for door in [Door::Api, Door::EventStream] {
            assert_eq!(
                admin(Some("s3cret"), &from(LOCAL), door),
                Err(Denied::TokenMissing)
            );
            let wrong = from(LOCAL).header("Authorization", "Bearer nope");
            assert_eq!(admin(Some("s3cret"), &wrong, door), Err(Denied::TokenWrong));
        }
    }

    #[test]
    fn only_the_event_stream_takes_the_admin_token_in_the_query() {
        let caller = from(REMOTE).query("token", "s3cret");
        assert_eq!(admin(Some("s3cret"), &caller, Door::EventStream), Ok(()));
        assert_eq!(
            admin(Some("s3cret"), &caller, Door::Api),
            Err(Denied::TokenMissing)
        );
        // A wrong query token is not rescued by a right header: the query is what was meant.
        let both = from(REMOTE)
            .query("token", "nope")
            .header("Authorization", "Bearer s3cret");
        assert_eq!(
            admin(Some("s3cret"), &both, Door::EventStream),
            Err(Denied::TokenWrong)
        );
    }

    #[test]
    fn without_an_admin_token_only_local_callers_are_let_in() {
        for door in [Door::Api, Door::EventStream] {
            assert_eq!(admin(None, &from(LOCAL), door), Ok(()));
            assert_eq!(admin(None, &from("[::1]:1"), door), Ok(()));
            assert_eq!(admin(None, &from(REMOTE), door), Err(Denied::LocalOnly));
            // A token someone sends does not stand in for being local.
            let sent = from(REMOTE).header("Authorization", "Bearer anything");
            assert_eq!(admin(None, &sent, door), Err(Denied::LocalOnly));
        }
    }

    #[test]
    fn ingest_token_from_query_or_header() {
        assert_eq!(ingest(None, &from(REMOTE)), Ok(()));
        let token = Some("in-tok");
        assert_eq!(ingest(token, &from(REMOTE)), Err(Denied::TokenMissing));
        assert_eq!(
            ingest(token, &from(REMOTE).query("token", "in-tok")),
            Ok(())
        );
        assert_eq!(
            ingest(token, &from(REMOTE).header("x-webhook-token", "in-tok")),
            Ok(())
        );
        assert_eq!(
            ingest(token, &from(LOCAL).header("X-Webhook-Token", "other")),
            Err(Denied::TokenWrong)
        );
    }

    #[test]
    fn a_forwarded_loopback_request_is_not_local() {
        for name in FORWARDING_HEADERS {
            let relayed = from(LOCAL).header(name, "203.0.113.7");
            for door in [Door::Api, Door::EventStream] {
                assert_eq!(
                    admin(None, &relayed, door),
                    Err(Denied::Forwarded),
                    "{name}"
                );
            }
            // The token still works, relayed or not.
            let with_token = relayed.header("Authorization", "Bearer s3cret");
            assert_eq!(admin(Some("s3cret"), &with_token, Door::Api), Ok(()));
        }
    }

    #[test]
    fn loopback_trust_needs_a_loopback_or_allowed_host() {
        for host in [
            "localhost",
            "LOCALHOST:8001",
            "127.0.0.1",
            "127.0.0.1:8001",
            "[::1]",
            "[::1]:8001",
            "127.1.2.3:9",
        ] {
            let caller = from(LOCAL).header("Host", host);
            assert_eq!(admin(None, &caller, Door::Api), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8001",
            "127.0.0.1.evil.example",
            "[::2]:8001",
        ] {
            let caller = from(LOCAL).header("Host", host);
            assert_eq!(
                admin(None, &caller, Door::Api),
                Err(Denied::ForeignHost),
                "{host}"
            );
        }
        let allowed = vec!["hookvault.internal".to_string()];
        let caller = from(LOCAL).header("Host", "hookvault.internal:8001");
        assert_eq!(super::admin(None, &allowed, &caller, Door::Api), Ok(()));
        // No Host at all is not a browser: nothing to rebind.
        assert_eq!(admin(None, &from(LOCAL), Door::Api), Ok(()));
        // A token does not care about Host.
        let tokened = from(REMOTE)
            .header("Host", "evil.example")
            .header("Authorization", "Bearer s3cret");
        assert_eq!(admin(Some("s3cret"), &tokened, Door::Api), Ok(()));
    }

    #[test]
    fn a_state_change_or_handshake_from_another_origin_is_refused() {
        let base = || from(LOCAL).header("Host", "127.0.0.1:8001");
        // Any spelling but the two safe methods' exact ones is a state change: methods are
        // case-sensitive, and a lowercase one once skipped this check.
        for method in [
            "POST", "PUT", "PATCH", "DELETE", "post", "Post", "delete", "get", "head", "PURGE",
        ] {
            let foreign = base()
                .method(method)
                .header("Origin", "http://evil.example");
            assert_eq!(
                admin(None, &foreign, Door::Api),
                Err(Denied::CrossOrigin),
                "{method}"
            );
            let null = base().method(method).header("Origin", "null");
            assert_eq!(
                admin(None, &null, Door::Api),
                Err(Denied::CrossOrigin),
                "{method}"
            );
            let same = base()
                .method(method)
                .header("Origin", "http://127.0.0.1:8001");
            assert_eq!(admin(None, &same, Door::Api), Ok(()), "{method}");
            assert_eq!(
                admin(None, &base().method(method), Door::Api),
                Ok(()),
                "{method}"
            );
        }
        // A read with a foreign Origin is let through (the browser does not show it the answer
        // without CORS headers, which hookvault never sends).
        for method in ["GET", "HEAD"] {
            let read = base()
                .method(method)
                .header("Origin", "http://evil.example");
            assert_eq!(admin(None, &read, Door::Api), Ok(()), "{method}");
        }
        // The event stream checks every handshake; the dashboard's port differs from the
        // stream's, and that is the same host.
        let ws = from(LOCAL).header("Host", "127.0.0.1:8002");
        let foreign = ws.header("Origin", "http://evil.example");
        assert_eq!(
            admin(None, &foreign, Door::EventStream),
            Err(Denied::CrossOrigin)
        );
        let dashboard = from(LOCAL)
            .header("Host", "127.0.0.1:8002")
            .header("Origin", "http://127.0.0.1:8001");
        assert_eq!(admin(None, &dashboard, Door::EventStream), Ok(()));
    }

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let proxies: Vec<Cidr> = vec![
            "127.0.0.1".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        // Not through a trusted proxy: the peer, whatever the header says.
        let direct = from(REMOTE).header("X-Forwarded-For", "203.0.113.7");
        assert_eq!(client_address(&direct, &proxies).as_deref(), Some(REMOTE));
        let untrusted = from(LOCAL).header("X-Forwarded-For", "203.0.113.7");
        assert_eq!(client_address(&untrusted, &[]).as_deref(), Some(LOCAL));
        // Through one: the rightmost hop that is not a trusted proxy.
        let one = from(LOCAL).header("X-Forwarded-For", "203.0.113.7");
        assert_eq!(
            client_address(&one, &proxies).as_deref(),
            Some("203.0.113.7")
        );
        let chain = from(LOCAL).header("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 192.168.1.1");
        assert_eq!(
            client_address(&chain, &proxies).as_deref(),
            Some("203.0.113.7")
        );
        let v6 = from(LOCAL).header("X-Forwarded-For", "2001:db8::1");
        assert_eq!(
            client_address(&v6, &proxies).as_deref(),
            Some("2001:db8::1")
        );
        // No header, or only proxies in it: the nearest proxy we can name.
        assert_eq!(
            client_address(&from(LOCAL), &proxies).as_deref(),
            Some(LOCAL)
        );
        let only = from(LOCAL).header("X-Forwarded-For", "192.168.0.9");
        assert_eq!(
            client_address(&only, &proxies).as_deref(),
            Some("192.168.0.9")
        );
        let junk = from(LOCAL).header("X-Forwarded-For", "unknown, 203.0.113.7");
        assert_eq!(
            client_address(&junk, &proxies).as_deref(),
            Some("203.0.113.7")
        );
    }
}
