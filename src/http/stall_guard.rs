//! Works around a scheduling race in tiny_http 0.12's connection pool.
//!
//! tiny_http serves each connection on a pooled thread for the connection's whole life. When
//! several connections arrive at once, its pool can count a thread as idle that was already
//! woken for another connection; the new connection's task is then queued with no thread to
//! run it, and waits until some other connection closes — with keep-alive senders that can be
//! minutes (our load tester saw one request wait the whole run).
//!
//! Any connection that ends frees a pool thread, which then takes the queued task. So this
//! guard opens and immediately closes a connection to our own listener a few times a second:
//! the pool either runs it on an idle thread (which then drains the queue in order) or starts
//! a thread for it (which, done at once, takes the stranded task). A stranded connection thus
//! waits at most about one period instead of indefinitely. The cost is a few loopback
//! connects per second.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub const PERIOD: Duration = Duration::from_millis(100);

pub struct StallGuard {
    thread: JoinHandle<()>,
}

impl StallGuard {
    pub fn start(listen: SocketAddr, stop: Receiver<()>) -> StallGuard {
        let target = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
            }
            _ => listen,
        };
        let thread = std::thread::Builder::new()
            .name("http-stall-guard".into())
            .spawn(move || loop {
                match stop.recv_timeout(PERIOD) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Connect and drop: tiny_http reads EOF and frees the thread.
                        let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
                    }
                    _ => return,
                }
            })
            .expect("spawn stall guard thread");
        StallGuard { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}
