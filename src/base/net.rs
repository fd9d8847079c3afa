//! Reaching our own listeners from this host: the gate's and the event stream's stops wake
//! their sleeping `accept` by connecting, and the listener watchdog asks its own port.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address to connect to for a listener bound to `listen`: an unspecified address
/// (`0.0.0.0`, `::`) becomes loopback of the same family; anything else is used as it is.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_becomes_loopback_of_its_family() {
        let r = |s: &str| reachable(s.parse().unwrap()).to_string();
        assert_eq!(r("0.0.0.0:80"), "127.0.0.1:80");
        assert_eq!(r("[::]:81"), "[::1]:81");
        assert_eq!(r("192.0.2.7:82"), "192.0.2.7:82");
    }
}
