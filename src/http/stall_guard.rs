//! Works around a scheduling race in tiny_http 0.12's connection pool.
//!
//! tiny_http serves each connection on a pooled thread for the connection's whole life. When
//! several connections arrive at once, its pool can count a thread as idle that was already
//! woken for another connection; the new connection's task is then queued with no thread to
//! run it, and waits until some other connection closes — with keep-alive senders that can be
//! minutes (our load tester saw one request wait the whole run).
//!
//! Any connection that ends frees a pool thread, which then takes the queued task. So this
//! guard opens and immediately closes connections to our own listener: the pool either runs
//! such a nudge on an idle thread (which then drains the queue in order) or starts a thread
//! for it (which, done at once, takes one stranded task). Each nudge rescues at most one
//! stranded connection, and strandings come in bursts of new connections, so the guard nudges
//! in bursts while requests are flowing and once per idle period otherwise. A stranded
//! connection waits tens of milliseconds instead of indefinitely; the cost is about ten
//! loopback connects per second when idle.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

/// Tick when idle, and the one nudge it sends.
pub const IDLE_PERIOD: Duration = Duration::from_millis(100);
/// Tick while requests are flowing, and the nudges per tick.
pub const BUSY_PERIOD: Duration = Duration::from_millis(20);
pub const BUSY_NUDGES: usize = 4;

pub struct StallGuard {
    thread: JoinHandle<()>,
}

impl StallGuard {
    /// `requests` counts requests taken by the handler threads; a change means traffic.
    pub fn start(listen: SocketAddr, requests: Arc<AtomicU64>, stop: Receiver<()>) -> StallGuard {
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
            .spawn(move || {
                let mut seen = requests.load(Relaxed);
                let mut busy = false;
                loop {
                    let period = if busy { BUSY_PERIOD } else { IDLE_PERIOD };
                    if !matches!(stop.recv_timeout(period), Err(RecvTimeoutError::Timeout)) {
                        return;
                    }
                    let now = requests.load(Relaxed);
                    busy = now != seen;
                    seen = now;
                    for _ in 0..if busy { BUSY_NUDGES } else { 1 } {
                        // Connect and drop: tiny_http reads EOF and frees the thread.
                        let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
                    }
                }
            })
            .expect("spawn stall guard thread");
        StallGuard { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}
