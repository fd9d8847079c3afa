//! Works around a scheduling race in tiny_http 0.12's connection pool.
//!
//! tiny_http serves each connection on a pooled thread for the connection's whole life. When
//! several connections arrive at once, its pool can count a thread as idle that was already
//! woken for another connection; the new connection's task is then queued with no thread to
//! run it, and waits until some other connection closes — with keep-alive senders that can be
//! minutes (our load tester saw one request wait the whole run).
//!
//! Any connection that ends frees a pool thread, which then takes the queued task. So this
//! guard opens and immediately closes connections to tiny_http's listener: the pool either
//! runs such a nudge on an idle thread (which then drains the queue in order) or starts a
//! thread for it (which, done at once, takes one stranded task). Each nudge rescues at most
//! one stranded connection, so the guard nudges in bursts.
//!
//! When it nudges: a task can only be stranded at the moment tiny_http's accept thread hands
//! out a *new* connection, and only when another one was handed out just before (the thread
//! counted as idle is one woken for that earlier connection and not yet running; the window is
//! one thread's wake-up latency). Only the gate ([`super::gate`]) and this guard open
//! connections to tiny_http, and both count them in [`Openings`]; the gate wakes the guard
//! when its connection came within [`Openings::LONE_GAP`] of another (nudges included), and a
//! lone one, which cannot be stranded, is let be. Woken, the guard nudges [`BUSY_NUDGES`] times
//! every [`BUSY_PERIOD`] until [`QUIET_TICKS`] ticks pass without a new opening. A stranded
//! connection waits tens of milliseconds instead of indefinitely; an idle server, or one whose
//! clients keep their connections, costs the guard nothing.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, RecvTimeoutError};

use super::gate::Openings;

/// Tick while connections are being opened, and the nudges per tick.
pub const BUSY_PERIOD: Duration = Duration::from_millis(20);
pub const BUSY_NUDGES: usize = 4;
/// Ticks without a new opening after which the guard sleeps again.
pub const QUIET_TICKS: u32 = 2;

pub struct StallGuard {
    thread: JoinHandle<()>,
}

impl StallGuard {
    /// Guards tiny_http's listener at `target`; `opened` wakes the guard after the gate opened
    /// connections counted in `openings`; `stop` ends it.
    pub fn start(
        target: SocketAddr,
        openings: Arc<Openings>,
        opened: Receiver<()>,
        stop: Receiver<()>,
    ) -> StallGuard {
        let thread = std::thread::Builder::new()
            .name("http-stall-guard".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                loop {
                    select! {
                        recv(stop) -> _ => return,
                        recv(opened) -> woken => if woken.is_err() { return },
                    }
                    let mut seen = openings.opened();
                    let mut quiet = 0;
                    while quiet < QUIET_TICKS {
                        if !matches!(
                            stop.recv_timeout(BUSY_PERIOD),
                            Err(RecvTimeoutError::Timeout)
                        ) {
                            return;
                        }
                        for _ in 0..BUSY_NUDGES {
                            openings.record();
                            // Connect and drop: tiny_http reads EOF and frees the thread.
                            let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
                        }
                        let _ = opened.try_recv();
                        let now = openings.opened();
                        quiet = if now == seen + BUSY_NUDGES as u64 {
                            quiet + 1
                        } else {
                            0
                        };
                        seen = now;
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
