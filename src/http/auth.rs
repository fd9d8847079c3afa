//! Who may call what. Admin endpoints take `Authorization: Bearer <server.admin_token>`; with
//! no token configured they answer loopback clients only. Ingest takes `ingest.token` as
//! `?token=` or `X-Webhook-Token` when one is set.

use std::net::SocketAddr;

use super::router::Call;
use super::{AppState, Reply};

/// Compares secrets in time that does not depend on where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn check_admin(state: &AppState, call: &Call) -> Result<(), Reply> {
    match &state.settings.server.admin_token {
        Some(token) => {
            let given = call
                .header("Authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim);
            match given {
                Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
                Some(_) => Err(Reply::error(401, "unauthorized", "the bearer token is wrong")
                    .with_header("WWW-Authenticate", "Bearer")),
                None => Err(Reply::error(
                    401,
                    "unauthorized",
                    "this endpoint needs `Authorization: Bearer <server.admin_token>`",
                )
                .with_header("WWW-Authenticate", "Bearer")),
            }
        }
        None if is_loopback(call.remote) => Ok(()),
        None => Err(Reply::error(
            403,
            "forbidden",
            "admin endpoints answer loopback clients only while server.admin_token is unset; set a token to use them remotely",
        )),
    }
}

pub fn check_ingest(state: &AppState, call: &Call) -> Result<(), Reply> {
    let Some(token) = &state.settings.ingest.token else {
        return Ok(());
    };
    let given = call
        .query("token")
        .or_else(|| call.header("X-Webhook-Token"));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(Reply::error(401, "unauthorized", "the ingest token is wrong")),
        None => Err(Reply::error(
            401,
            "unauthorized",
            "an ingest token is required: add ?token=<ingest.token> to the URL or send it as X-Webhook-Token",
        )),
    }
}

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
}
