//! Who may call what: the one place that decides, for the HTTP API and the WebSocket event
//! stream alike, so the two cannot drift apart (they once did: the stream refused
//! `Authorization: bearer …` that the API accepted).
//!
//! - Admin endpoints and the event stream take `server.admin_token` as
//!   `Authorization: Bearer <token>` (the scheme in any case, as RFC 7235 says); the event
//!   stream also as `?token=`, because browsers cannot set headers on a WebSocket. With no
//!   token configured they answer local callers only.
//! - Ingest takes `ingest.token` as `?token=` or `X-Webhook-Token` when one is set.
//!
//! Callers describe a request through [`Caller`] (peer address, headers, query), so a rule
//! that looks at more of the request (forwarding headers, `Host`, `Origin`) is added here,
//! in [`is_local`] or beside it, and holds for both at once. This module imports nothing
//! from the crate: it sits below both callers.

use std::net::SocketAddr;

/// The parts of a request the access rules read.
pub trait Caller {
    /// The peer's address as the socket reports it.
    fn peer(&self) -> Option<SocketAddr>;
    /// A header's value; the name is matched without regard to case.
    fn header(&self, name: &str) -> Option<&str>;
    /// A query parameter, decoded (the first one when it is given twice).
    fn query(&self, name: &str) -> Option<&str>;
}

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
}

/// The admin rule: the token when one is configured, else local callers only.
pub fn admin(token: Option<&str>, caller: &impl Caller, door: Door) -> Result<(), Denied> {
    let Some(token) = token else {
        return if is_local(caller) {
            Ok(())
        } else {
            Err(Denied::LocalOnly)
        };
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

/// Whether a caller counts as local, which is what admin access without a token rests on.
/// Today: the peer is a loopback address.
pub fn is_local(caller: &impl Caller) -> bool {
    is_loopback(caller.peer())
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
        headers: Vec<(&'static str, &'static str)>,
        query: Vec<(&'static str, &'static str)>,
    }

    fn from(peer: &'static str) -> Fake {
        Fake {
            peer,
            headers: Vec::new(),
            query: Vec::new(),
        }
    }

    impl Fake {
        fn header(mut self, name: &'static str, value: &'static str) -> Fake {
            self.headers.push((name, value));
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
}
