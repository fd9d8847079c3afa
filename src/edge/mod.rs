//! The edge: what reads requests off hookvault's HTTP port and hands them to tiny_http. The
//! transport under the API: it knows HTTP/1 framing, connections and sockets, and nothing of
//! routes or handlers; the API's server (`api/server.rs`) starts it and serves what tiny_http
//! reads.
//!
//! Two modes (`server.edge`, see [`Mode`]):
//! - **direct**: tiny_http listens on the public port itself. Right behind a reverse proxy
//!   that bounds heads, bodies, slow senders and connections (the shipped nginx and Caddy
//!   configurations), or for senders on this host; see `docs/deploy.md`.
//! - **gate**: hookvault is its own edge. The gate ([`gate`], [`connection`], what they share
//!   in [`shared`]) reads each
//!   request whole with `httparse` ([`head`], [`framing`], [`chunked`]), refuses anything
//!   ambiguous ([`refusal`] words every refusal, for both modes), and passes tiny_http a
//!   request it wrote itself, carrying the client's address, over a connection to a Unix
//!   socket only hookvault can reach ([`hop`]), copying back exactly its answer ([`answer`]).
//!
//! In both modes the [`stall_guard`] rescues connections tiny_http's pool strands.
//!
//! [`listener_watchdog`] watches the public port in both modes, told by [`activity`] when
//! new clients are being answered anyway.

pub mod activity;
pub mod answer;
pub mod chunked;
pub mod connection;
pub mod framing;
pub mod gate;
pub mod head;
pub mod hop;
pub mod listener_watchdog;
pub mod refusal;
pub mod shared;
pub mod stall_guard;

use std::net::SocketAddr;

use crate::settings::ServerSettings;

/// Who reads requests off the public port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Gate,
    Direct,
}

impl Mode {
    /// The mode `server.edge` asks for with `server.listen`, and why, for the start-up log
    /// and `check-config`. `auto`: the gate unless the address is loopback, where a proxy
    /// on this host (or a local sender) is the only client.
    pub fn resolve(server: &ServerSettings) -> (Mode, String) {
        let loopback = server
            .listen
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        match server.edge.as_str() {
            "gate" => (Mode::Gate, "server.edge = \"gate\"".into()),
            "direct" => (Mode::Direct, "server.edge = \"direct\"".into()),
            _ if loopback => (
                Mode::Direct,
                format!(
                    "server.edge = \"auto\" and {} is a loopback address (a proxy on this host is the edge)",
                    server.listen
                ),
            ),
            _ => (
                Mode::Gate,
                format!(
                    "server.edge = \"auto\" and {} is not a loopback address (hookvault is its own edge)",
                    server.listen
                ),
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Gate => "gate",
            Mode::Direct => "direct",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_gates_only_what_is_not_loopback() {
        let mode = |listen: &str, edge: &str| {
            let s = ServerSettings {
                listen: listen.into(),
                edge: edge.into(),
                ..ServerSettings::default()
            };
            Mode::resolve(&s).0
        };
        assert_eq!(mode("127.0.0.1:8001", "auto"), Mode::Direct);
        assert_eq!(mode("[::1]:8001", "auto"), Mode::Direct);
        assert_eq!(mode("0.0.0.0:8001", "auto"), Mode::Gate);
        assert_eq!(mode("192.0.2.1:8001", "auto"), Mode::Gate);
        assert_eq!(mode("127.0.0.1:8001", "gate"), Mode::Gate);
        assert_eq!(mode("0.0.0.0:8001", "direct"), Mode::Direct);
    }
}
