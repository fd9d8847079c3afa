//! Rescues connections stranded by a scheduling race in tiny_http 0.12's thread pool.
//!
//! tiny_http hands each new connection to its pool, which serves it on one thread for the
//! connection's whole life. The pool counts a thread as idle from the moment it starts
//! waiting until it has woken *and* taken the pool's lock again. When a second connection
//! arrives in that window, the pool believes a thread is still waiting, queues the task and
//! signals a condition variable nobody waits on any more: the task stays queued until some
//! thread finishes a task of its own. With keep-alive clients that is never, and every
//! connection arriving close to another can be stranded this way; a burst strands many.
//!
//! Any pool thread that comes free takes the oldest queued task, and a connection the pool
//! receives while no thread is idle gets a new thread, which takes the oldest queued task
//! once its own is done. So the guard, when woken, opens a *sentinel* connection to
//! tiny_http with its sending side closed: the sentinel is served (tiny_http reads its end
//! and closes it) only once every task queued before it has a thread. While the sentinel is
//! not served, the guard opens *nudges* (connections closed at once), more each round: each
//! one either gets a new thread that then takes a stranded task, or wakes an idle thread
//! that does. When the sentinel closes, nothing is stranded.
//!
//! It runs in both modes: in direct mode tiny_http's connections are the clients', in gate
//! mode the gate's hop connections, one per client connection. Handlers wake it ([`Poke`]) at most every [`POKE_EVERY`] while requests arrive (a burst
//! that strands connections also brings requests on the connections it did not strand), and
//! the listener watchdog wakes it before it counts a check that got no answer; after a
//! rescue it looks once more a moment later. An idle server costs it nothing.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use crate::base::lifecycle::{Background, Stop};

/// Handlers wake the guard at most this often.
pub const POKE_EVERY: Duration = Duration::from_millis(50);
/// How long the sentinel may wait before the guard takes it for stranded and nudges.
const SETTLE: Duration = Duration::from_millis(5);
/// After a rescue, when the guard looks again.
const LOOK_AGAIN: Duration = Duration::from_millis(100);
/// Bounds on one rescue, and on the nudges opened between two looks at the sentinel.
const MAX_NUDGES: usize = 4096;
const MAX_BATCH: usize = 64;
const MAX_RESCUE: Duration = Duration::from_secs(5);

/// tiny_http's listener: the public port (direct mode) or the gate's hop socket.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A connection to the target, its sending side closed at once: tiny_http reads its end
/// and closes it as soon as a pool thread runs it.
enum Probe {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Target {
    fn open(&self) -> std::io::Result<Probe> {
        Ok(match self {
            Target::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, Duration::from_millis(500))?;
                s.shutdown(Shutdown::Write)?;
                Probe::Tcp(s)
            }
            Target::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.shutdown(Shutdown::Write)?;
                Probe::Unix(s)
            }
        })
    }
}

impl Probe {
    /// Whether tiny_http served it within `wait` (it closed it, or answered).
    fn served_within(&mut self, wait: Duration) -> bool {
        let mut sink = [0u8; 256];
        let read = match self {
            Probe::Tcp(s) => s
                .set_read_timeout(Some(wait))
                .and_then(|()| s.read(&mut sink)),
            Probe::Unix(s) => s
                .set_read_timeout(Some(wait))
                .and_then(|()| s.read(&mut sink)),
        };
        !matches!(read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    }
}

/// Wakes the guard; cheap enough for every request.
#[derive(Clone)]
pub struct Poke(Arc<PokeInner>);

struct PokeInner {
    wake: Sender<()>,
    last_ms: AtomicU64,
    epoch: Instant,
}

impl Poke {
    /// A poke, and what the guard hears it on (see [`StallGuard::start`]): made before the
    /// guard, so the handlers that poke can start first and stop after it.
    pub fn new() -> (Poke, Receiver<()>) {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let poke = Poke(Arc::new(PokeInner {
            wake,
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }));
        (poke, woken)
    }

    pub fn poke(&self) {
        let now = self.0.epoch.elapsed().as_millis() as u64 + POKE_EVERY.as_millis() as u64;
        let last = self.0.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= POKE_EVERY.as_millis() as u64 {
            self.0.last_ms.store(now, Ordering::Relaxed);
            let _ = self.0.wake.try_send(());
        }
    }

    /// Wakes the guard now, whenever it was last woken.
    pub fn poke_now(&self) {
        let _ = self.0.wake.try_send(());
    }
}

/// The stall guard thread.
pub struct StallGuard;

impl StallGuard {
    /// Guards tiny_http's listener at `target`, woken by the [`Poke`] that `woken` came with,
    /// until the component stops.
    pub fn start(target: Target, woken: Receiver<()>) -> std::io::Result<Background> {
        let mut guard = Background::new("http-stall-guard");
        guard.spawn_with_stack("http-stall-guard", 128 * 1024, move |stop| loop {
            select! {
                recv(stop.receiver()) -> _ => return,
                recv(woken) -> w => if w.is_err() { return },
            }
            loop {
                let nudged = rescue(&target, &stop);
                if stop.sleep(LOOK_AGAIN) {
                    return;
                }
                let poked = woken.try_recv().is_ok();
                if nudged == 0 && !poked {
                    break;
                }
            }
        })?;
        Ok(guard)
    }
}

/// Opens a sentinel and nudges until it is served; how many nudges it took. Each round
/// without the sentinel served opens twice as many nudges as the last (up to
/// [`MAX_BATCH`]): a burst can strand hundreds, and a nudge too many only costs a thread
/// that ends at once.
fn rescue(target: &Target, stop: &Stop) -> usize {
    let Ok(mut sentinel) = target.open() else {
        return 0;
    };
    let started = Instant::now();
    let (mut nudges, mut batch) = (0, 1);
    while !sentinel.served_within(SETTLE) {
        if nudges >= MAX_NUDGES || started.elapsed() > MAX_RESCUE || stop.is_stopping() {
            break;
        }
        for _ in 0..batch {
            if target.open().is_ok() {
                nudges += 1;
            }
        }
        batch = (batch * 2).min(MAX_BATCH);
    }
    nudges
}
