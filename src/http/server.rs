//! The listener and its handler threads. The public port is the edge gate's
//! ([`super::gate`]): it passes only complete, well-framed requests to tiny_http, which
//! listens on a loopback port of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::gate::{Gate, Limits, Openings, Peers};
use super::listener_watchdog::{ListenerWatchdog, OnDead};
use super::router;
use super::stall_guard::StallGuard;
use super::state::AppState;
use crate::error::{Error, Result};

pub struct HttpServer {
    gate: Option<Gate>,
    server: Arc<tiny_http::Server>,
    guard: Option<(StallGuard, crossbeam_channel::Sender<()>)>,
    watchdog: Option<(ListenerWatchdog, crossbeam_channel::Sender<()>)>,
    threads: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
}

/// A bound listener not yet served: binding first lets start-up fail on a taken port before
/// it opens the database or starts any thread.
pub struct BoundListener {
    /// The public port, for the gate.
    public: std::net::TcpListener,
    /// tiny_http on a loopback port of its own, reached only through the gate.
    server: tiny_http::Server,
    inner: SocketAddr,
    addr: SocketAddr,
}

impl BoundListener {
    /// `idle_timeout`: the send timeout of both listening sockets, so every accepted
    /// connection inherits it (Linux copies socket options on accept): an answer that cannot
    /// be sent for that long fails instead of holding a handler. Reads need no timeout from
    /// the socket: the gate bounds each read from a client itself, and tiny_http reads only
    /// from the gate, which closes its connection to tiny_http when the client leaves or goes
    /// idle. (A receive timeout on a listening socket would also bound `accept`, and
    /// tiny_http's accept loop ends at its first error: an idle server lost its listener.)
    pub fn bind(listen: &str, idle_timeout: Duration) -> Result<BoundListener> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| Error::Config(format!("server.listen {listen:?}: {e}")))?;
        let public = listen_on(addr, idle_timeout, listen)?;
        let addr = public.local_addr().map_err(|e| Error::Bind {
            addr: listen.to_string(),
            source: e,
        })?;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = listen_on(loopback, idle_timeout, "127.0.0.1:0")?;
        let inner = listener.local_addr().map_err(|e| Error::Bind {
            addr: "127.0.0.1:0".into(),
            source: e,
        })?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(|e| Error::Bind {
            addr: listen.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(BoundListener {
            public,
            server,
            inner,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A listening socket with `idle_timeout` for writes (accepted sockets inherit it).
fn listen_on(
    addr: SocketAddr,
    idle_timeout: Duration,
    listen: &str,
) -> Result<std::net::TcpListener> {
    let bind_error = |e: std::io::Error| Error::Bind {
        addr: listen.to_string(),
        source: e,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    socket
        .set_write_timeout(Some(idle_timeout))
        .map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.listen(1024).map_err(bind_error)?;
    Ok(std::net::TcpListener::from(socket))
}

impl HttpServer {
    /// `on_dead`: what to do when the listener stops answering (see
    /// [`super::listener_watchdog`]).
    pub fn start(
        bound: BoundListener,
        threads: usize,
        state: Arc<AppState>,
        on_dead: OnDead,
    ) -> HttpServer {
        let BoundListener {
            public,
            server,
            inner,
            addr,
        } = bound;
        let server_settings = &state.settings.server;
        let (openings, opened) = Openings::new();
        let gate = Gate::start(
            public,
            inner,
            Limits {
                max_body_bytes: server_settings.max_body_bytes,
                body_timeout: Duration::from_secs(server_settings.body_timeout_s),
                idle_timeout: Duration::from_secs(server_settings.idle_timeout_s),
            },
            openings.clone(),
        );
        let peers = gate.peers();
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let (accept_died_tx, accept_died) = crossbeam_channel::bounded(1);
        let threads = (0..threads)
            .map(|i| {
                let (server, state, stopping) = (server.clone(), state.clone(), stopping.clone());
                let peers = peers.clone();
                let accept_died = accept_died_tx.clone();
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .stack_size(512 * 1024)
                    .spawn(move || serve(&server, &state, &stopping, &peers, &accept_died))
                    .expect("spawn http thread")
            })
            .collect();
        let (guard_stop, guard_rx) = crossbeam_channel::bounded(0);
        // The pool race it works around is tiny_http's: nudge tiny_http's own port.
        let guard = StallGuard::start(inner, openings.clone(), opened, guard_rx);
        // The watchdog asks the public port: through the gate to a handler, like a client.
        let (watchdog_stop, watchdog_rx) = crossbeam_channel::bounded(0);
        let watchdog = ListenerWatchdog::start(addr, on_dead, accept_died, openings, watchdog_rx);
        HttpServer {
            gate: Some(gate),
            server,
            guard: Some((guard, guard_stop)),
            watchdog: Some((watchdog, watchdog_stop)),
            threads,
            stopping,
            addr,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking requests. Requests already handed to a thread are answered first; the
    /// listener closes when the last thread is done. Slow clients are cut off by the gate's
    /// stop, so they never hold it.
    pub fn stop(mut self) {
        // First, so closing the listener on purpose is not taken for an outage.
        if let Some((watchdog, stop)) = self.watchdog.take() {
            drop(stop);
            watchdog.join();
        }
        if let Some(gate) = self.gate.take() {
            gate.stop();
        }
        if let Some((guard, stop)) = self.guard.take() {
            drop(stop);
            guard.join();
        }
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn serve(
    server: &tiny_http::Server,
    state: &AppState,
    stopping: &AtomicBool,
    peers: &Peers,
    accept_died: &crossbeam_channel::Sender<String>,
) {
    loop {
        match server.recv() {
            Ok(mut request) => {
                let started = Instant::now();
                let client = peers.client_of(request.remote_addr().copied());
                let reply = router::dispatch(state, &mut request, client, started);
                let status = reply.status;
                if let Err(e) = request.respond(reply.into_tiny()) {
                    log::debug!("could not send a {status} answer: {e}");
                }
            }
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            // tiny_http hands out an error only when its accept loop has ended: the listener
            // is gone. The watchdog decides what happens next.
            Err(e) => {
                log::error!("http: the listener stopped accepting: {e}");
                let _ = accept_died.try_send(e.to_string());
            }
        }
    }
}
