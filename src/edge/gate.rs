//! The gate's accept loop: one thread per client connection ([`super::connection`]), at most
//! `server.max_connections` of them (one more is answered `503` with `Retry-After` and
//! closed), and the stop that lets requests already passed on be answered.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::activity::Activity;
use super::connection::Connection;
use super::refusal::Refusal;
use super::shared::{Limits, Shared};
use crate::base::lifecycle::{Component, Joined, Stopper, Thread};

/// How long a stop waits for connections to finish the requests they already passed on.
const STOP_GRACE: Duration = Duration::from_secs(2);
const THREAD_STACK: usize = 128 * 1024;

pub struct Gate {
    shared: Arc<Shared>,
    stopper: Stopper,
    accept: Thread,
    turn_away: Thread,
    /// Disconnects once the accept loop and every connection thread have ended.
    connections: Receiver<()>,
    public: SocketAddr,
}

impl Gate {
    /// Serves `listener`, passing requests to tiny_http's socket at `hop`.
    pub fn start(
        listener: TcpListener,
        hop: &Path,
        limits: Limits,
        activity: Arc<Activity>,
    ) -> std::io::Result<Gate> {
        let public = listener.local_addr()?;
        let stopper = Stopper::new();
        let shared = Arc::new(Shared {
            stop: stopper.signal(),
            next_id: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            clients: Mutex::default(),
            hop: hop.to_path_buf(),
            activity,
        });
        let (lingering, turn_away) = start_turn_away()?;
        // Each connection thread holds a clone; the receiver hears when the last one is gone.
        let (connection, connections) = crossbeam_channel::bounded::<()>(0);
        let accept = {
            let shared = shared.clone();
            Thread::spawn("http-gate", move || {
                accept_loop(&listener, limits, &shared, &lingering, &connection)
            })?
        };
        Ok(Gate {
            shared,
            stopper,
            accept,
            turn_away,
            connections,
            public,
        })
    }
}

/// Stops accepting and reading requests: a request still arriving is answered `503` with
/// `Retry-After`, requests already passed on are answered (for up to `STOP_GRACE`), then
/// every connection is closed, so a slow client never holds a stop.
impl Component for Gate {
    fn name(&self) -> &'static str {
        "http-gate"
    }

    fn stop(mut self: Box<Self>, deadline: Instant) -> usize {
        self.stopper.stop();
        // The accept thread sleeps in a blocking `accept`, which no channel can wake: a
        // connection does, and it then sees the stop and returns.
        let _ = TcpStream::connect_timeout(
            &crate::base::net::reachable(self.public),
            Duration::from_secs(1),
        );
        let Gate {
            shared,
            accept,
            turn_away,
            connections,
            ..
        } = *self;
        let mut left_behind = usize::from(accept.join_by(deadline) == Joined::LeftBehind);
        for client in lock(&shared.clients).values() {
            let _ = client.shutdown(Shutdown::Read);
        }
        let _ = connections.recv_deadline(Instant::now() + STOP_GRACE);
        for client in lock(&shared.clients).values() {
            let _ = client.shutdown(Shutdown::Both);
        }
        left_behind += usize::from(turn_away.join_by(deadline) == Joined::LeftBehind);
        left_behind
    }
}

fn accept_loop(
    listener: &TcpListener,
    limits: Limits,
    shared: &Arc<Shared>,
    lingering: &Sender<TcpStream>,
    connection: &Sender<()>,
) {
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            return;
        }
        let (client, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                log::warn!("http: accept failed: {e}");
                shared.activity.report_trouble();
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.open.load(Ordering::Relaxed) >= limits.max_connections {
            turn_away(client, limits.max_connections, lingering);
            continue;
        }
        let Ok(registered) = client.try_clone() else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&shared.clients).insert(id, registered);
        shared.open.fetch_add(1, Ordering::Relaxed);
        let shared_conn = shared.clone();
        let alive = connection.clone();
        // Not waited for one by one: the stop closes their sockets and hears them end through
        // `alive`.
        let spawned = Thread::spawn_with_stack("http-conn", THREAD_STACK, move || {
            let _alive = alive;
            Connection::new(client, peer, limits, &shared_conn).serve();
            lock(&shared_conn.clients).remove(&id);
            shared_conn.open.fetch_sub(1, Ordering::Relaxed);
        });
        if let Err(e) = spawned {
            log::warn!("http: no thread for a connection from {peer}: {e}");
            shared.activity.report_trouble();
            if let Some(client) = lock(&shared.clients).remove(&id) {
                turn_away(client, limits.max_connections, lingering);
            }
            shared.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `503` to a client over the connection cap, written without waiting (a fresh socket's
/// send buffer takes it). The socket then goes to the turn-away thread, which reads what
/// the client still sends for a moment before closing, so the close does not reset the
/// connection before the answer is read.
fn turn_away(client: TcpStream, max: usize, lingering: &Sender<TcpStream>) {
    if client.set_nonblocking(true).is_err() {
        return;
    }
    let mut client = client;
    let _ = client.write_all(&Refusal::too_many_connections(max).http());
    let _ = client.shutdown(Shutdown::Write);
    let _ = lingering.try_send(client);
}

/// How long a turned-away socket is kept open, and how many at most.
const TURN_AWAY_LINGER: Duration = Duration::from_millis(500);
const TURN_AWAY_BACKLOG: usize = 4096;

/// The thread that closes turned-away sockets; asleep while there are none. It ends when the
/// accept loop, the only sender, has.
fn start_turn_away() -> std::io::Result<(Sender<TcpStream>, Thread)> {
    let (tx, rx) = crossbeam_channel::bounded::<TcpStream>(TURN_AWAY_BACKLOG);
    let thread = Thread::spawn_with_stack("http-turn-away", THREAD_STACK, move || {
        let mut held: Vec<(TcpStream, Instant)> = Vec::new();
        let mut sink = [0u8; 4096];
        loop {
            let next = if held.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(Duration::from_millis(50))
            };
            match next {
                Ok(s) => held.push((s, Instant::now())),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            held.retain_mut(|(s, since)| {
                let open = loop {
                    match s.read(&mut sink) {
                        Ok(0) => break false,
                        Ok(_) => continue,
                        Err(e) => break e.kind() == std::io::ErrorKind::WouldBlock,
                    }
                };
                open && since.elapsed() < TURN_AWAY_LINGER
            });
        }
    })?;
    Ok((tx, thread))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
