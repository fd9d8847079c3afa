//! No silent outage: a thread that asks our own listener for `/healthz` every second, like a
//! client would. tiny_http serves from one accept thread; when it dies (it stops at the first
//! `accept` error, and panics when it cannot start a connection thread: `TasksMax`,
//! `RLIMIT_NPROC`, memory) the listening socket goes with it while the process lives on, and
//! a service manager watching only the process would never restart it.
//!
//! After [`FAILURES`] checks in a row without an HTTP answer — or at once when a handler thread
//! hears from tiny_http that its accept loop ended — the watchdog logs why and calls its
//! `on_dead` action (`serve` exits with code 71, so systemd's `Restart=on-failure` restarts
//! it). While checks pass it also feeds systemd's watchdog (`WATCHDOG=1`) and, after the first
//! pass, says `READY=1` (see [`crate::notify`]): readiness means a client can be answered.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, TryRecvError};

use crate::notify::Notifier;

/// How often the listener is asked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one check waits for a connection and an answer. Generous: a listener that
/// answers slowly under load is alive.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Failed checks in a row that mean the listener is gone.
pub const FAILURES: u32 = 3;

/// What to do when the listener is gone (`serve`: log and exit 71).
pub type OnDead = Arc<dyn Fn(&str) + Send + Sync>;

pub struct ListenerWatchdog {
    thread: JoinHandle<()>,
}

impl ListenerWatchdog {
    /// Watches the listener at `listen`. `accept_died` carries tiny_http's report that its
    /// accept loop ended; `stop` ends the watchdog (the service is stopping).
    pub fn start(
        listen: SocketAddr,
        on_dead: OnDead,
        accept_died: Receiver<String>,
        stop: Receiver<()>,
    ) -> ListenerWatchdog {
        let target = loopback(listen);
        let notifier = Notifier::from_env();
        let ping_every = Notifier::watchdog_interval();
        let thread = std::thread::Builder::new()
            .name("http-watchdog".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut failures = 0;
                let mut ready = false;
                let mut last_ping: Option<Instant> = None;
                loop {
                    let why = match check(target) {
                        Ok(()) => {
                            failures = 0;
                            if let Some(n) = &notifier {
                                if !ready {
                                    n.send(&format!("READY=1\nSTATUS=serving on http://{listen}"));
                                }
                                let due = match (ping_every, last_ping) {
                                    (Some(every), Some(at)) => at.elapsed() >= every,
                                    (Some(_), None) => true,
                                    (None, _) => false,
                                };
                                if due {
                                    n.send("WATCHDOG=1");
                                    last_ping = Some(Instant::now());
                                }
                            }
                            ready = true;
                            None
                        }
                        Err(why) => {
                            failures += 1;
                            log::warn!(
                                "http: self-check {failures}/{FAILURES} of http://{target}/healthz failed: {why}"
                            );
                            (failures >= FAILURES).then_some(why)
                        }
                    };
                    let why = why.or_else(|| {
                        select! {
                            recv(stop) -> _ => Some(String::new()),
                            recv(accept_died) -> e => Some(format!(
                                "the accept loop ended: {}",
                                e.unwrap_or_else(|_| "no reason given".into())
                            )),
                            default(CHECK_EVERY) => None,
                        }
                    });
                    match why {
                        None => {}
                        Some(why) if why.is_empty() => return,
                        Some(why) => {
                            // A stop that raced with the failure: the listener closed on purpose.
                            if !matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
                                return;
                            }
                            let why = format!("the HTTP listener on {listen} stopped answering ({why})");
                            log::error!("{why}; exiting so the service manager restarts hookvault");
                            if let Some(n) = &notifier {
                                n.send(&format!("STATUS={why}"));
                            }
                            on_dead(&why);
                            return;
                        }
                    }
                }
            })
            .expect("spawn listener watchdog thread");
        ListenerWatchdog { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Where to reach a listener bound to `listen` from this host.
pub fn loopback(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// One check: an HTTP status line in answer to `GET /healthz` within [`ANSWER_WITHIN`].
fn check(target: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    let mut conn =
        TcpStream::connect_timeout(&target, ANSWER_WITHIN).map_err(|e| format!("connect: {e}"))?;
    let left = ANSWER_WITHIN
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(10));
    conn.set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookvault\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match conn.read(&mut head[got..]) {
            Ok(0) => return Err("closed without an answer".into()),
            Ok(n) => got += n,
            Err(e) => return Err(format!("no answer within {ANSWER_WITHIN:?}: {e}")),
        }
    }
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&head)
        ))
    }
}
