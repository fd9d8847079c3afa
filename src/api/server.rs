//! The listener and its handler threads. Who reads the public port depends on the edge mode
//! ([`crate::edge::Mode`]): the gate, passing tiny_http (on a Unix socket of its own) only
//! requests it wrote itself, or tiny_http directly; the stall guard beside it in both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use super::response::Reply;
use super::router;
use super::state::AppState;
use crate::base::error::{Error, Result};
use crate::base::lifecycle::{Background, Component, Components, Stop};
use crate::edge::activity::Activity;
use crate::edge::gate::Gate;
use crate::edge::head::CLIENT_HEADER;
use crate::edge::hop::HopSocket;
use crate::edge::listener_watchdog::{ListenerWatchdog, OnDead};
use crate::edge::refusal::Refusal;
use crate::edge::shared::Limits;
use crate::edge::stall_guard::{Poke, StallGuard, Target as GuardTarget};
use crate::edge::Mode;
use crate::settings::ServerSettings;

/// The HTTP side of the service, started as components of the service's list (see
/// [`HttpServer::start`]).
pub struct HttpServer;

/// A bound listener not yet served: binding first lets start-up fail on a taken port before
/// it opens the database or starts any thread.
pub struct BoundListener {
    mode: Mode,
    why: String,
    /// The public port, for the gate (direct mode: tiny_http has it).
    public: Option<std::net::TcpListener>,
    server: tiny_http::Server,
    hop: Option<HopSocket>,
    addr: SocketAddr,
}

impl BoundListener {
    /// Binds `server.listen` for the mode `server.edge` resolves to. The public socket's send
    /// timeout is `server.idle_timeout_s`, so every accepted connection inherits it (Linux
    /// copies socket options on accept): an answer that cannot be sent for that long fails
    /// instead of holding a thread. It gets no receive timeout: that would also bound
    /// `accept`, and tiny_http's accept loop ends at its first error. The gate bounds its
    /// reads itself; in direct mode the proxy in front bounds idle connections.
    pub fn bind(settings: &ServerSettings) -> Result<BoundListener> {
        let listen = &settings.listen;
        let (mode, why) = Mode::resolve(settings);
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| Error::Config(format!("server.listen {listen:?}: {e}")))?;
        let idle_timeout = Duration::from_secs(settings.idle_timeout_s);
        let public = listen_on(addr, idle_timeout, listen)?;
        let addr = public.local_addr().map_err(|e| Error::Bind {
            addr: listen.to_string(),
            source: e,
        })?;
        let tiny_error = |e: Box<dyn std::error::Error + Send + Sync>| Error::Bind {
            addr: listen.to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        let (public, server, hop) = match mode {
            Mode::Direct => (
                None,
                tiny_http::Server::from_listener(public, None).map_err(tiny_error)?,
                None,
            ),
            Mode::Gate => {
                let (hop, unix) = HopSocket::create().map_err(|e| Error::Bind {
                    addr: "the gate's Unix socket".into(),
                    source: e,
                })?;
                let server = tiny_http::Server::from_listener(unix, None).map_err(tiny_error)?;
                (Some(public), server, Some(hop))
            }
        };
        Ok(BoundListener {
            mode,
            why,
            public,
            server,
            hop,
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
    /// Serves `bound`, pushing onto `started`, in this order: the handler threads, the stall
    /// guard, the gate (gate mode) and the watchdog. So a stop ends the watchdog first (closing
    /// the listener on purpose is no outage), then the gate (the requests it passed on are
    /// answered, which needs the guard and the handlers), then the guard, the handlers last.
    /// `on_dead`: what to do when the listener stops answering (see
    /// [`crate::edge::listener_watchdog`]).
    pub fn start(
        bound: BoundListener,
        threads: usize,
        state: Arc<AppState>,
        on_dead: OnDead,
        started: &mut Components,
    ) -> Result<()> {
        let BoundListener {
            mode,
            why,
            public,
            server,
            hop,
            addr,
        } = bound;
        log::info!("http: edge mode {}: {why}", mode.name());
        let spawn_error = |e: std::io::Error| Error::Other(e.to_string());
        let limits = {
            let server = &state.settings.server;
            Limits {
                max_body_bytes: server.max_body_bytes,
                body_timeout: Duration::from_secs(server.body_timeout_s),
                idle_timeout: Duration::from_secs(server.idle_timeout_s),
                max_connections: server.max_connections,
            }
        };
        let activity = Activity::new();
        // tiny_http's pool strands connections in both modes: clients' or the gate's hops.
        let guarded = match &hop {
            Some(hop) => GuardTarget::Unix(hop.path().to_path_buf()),
            None => GuardTarget::Tcp(crate::base::net::reachable(addr)),
        };
        let gate_hop = hop.as_ref().map(|h| h.path().to_path_buf());
        let (poke, woken) = Poke::new();
        let (accept_died_tx, accept_died) = crossbeam_channel::bounded(1);
        let handlers = Handlers::start(server, hop, threads, state, mode, &poke, accept_died_tx)
            .map_err(spawn_error)?;
        started.push(handlers);
        started.push(StallGuard::start(guarded, woken).map_err(spawn_error)?);
        if let (Some(public), Some(hop)) = (public, gate_hop) {
            let gate = Gate::start(public, &hop, limits, activity.clone()).map_err(spawn_error)?;
            started.push(gate);
        }
        // The watchdog asks the public port, like a client.
        let watchdog = ListenerWatchdog::start(addr, on_dead, accept_died, activity, Some(poke))
            .map_err(spawn_error)?;
        started.push(watchdog);
        Ok(())
    }
}

/// tiny_http and the threads that take its requests. Fields drop in order: tiny_http's
/// stop connects to its own socket, so the hop socket goes after it.
struct Handlers {
    server: Arc<tiny_http::Server>,
    /// `None` once stopped.
    threads: Option<Background>,
    /// Removed (dropped) after tiny_http has stopped.
    _hop: Option<HopSocket>,
}

impl Handlers {
    fn start(
        server: tiny_http::Server,
        hop: Option<HopSocket>,
        threads: usize,
        state: Arc<AppState>,
        mode: Mode,
        poke: &Poke,
        accept_died: crossbeam_channel::Sender<String>,
    ) -> std::io::Result<Handlers> {
        let server = Arc::new(server);
        let mut pool = Background::new("http-handlers");
        for i in 0..threads {
            let (tiny, state, poke) = (server.clone(), state.clone(), poke.clone());
            let accept_died = accept_died.clone();
            let spawned = pool.spawn_with_stack(format!("http-{i}"), 512 * 1024, move |stop| {
                serve(&tiny, &state, &stop, mode, &poke, &accept_died)
            });
            if let Err(e) = spawned {
                Handlers {
                    server,
                    threads: Some(pool),
                    _hop: hop,
                }
                .shut(Instant::now() + Duration::from_secs(1));
                return Err(e);
            }
        }
        Ok(Handlers {
            server,
            threads: Some(pool),
            _hop: hop,
        })
    }

    /// Requests already handed to a thread are answered first; the listener closes when the
    /// last thread is done. How many threads were left behind at `deadline`.
    fn shut(&mut self, deadline: Instant) -> usize {
        let Some(mut threads) = self.threads.take() else {
            return 0;
        };
        threads.give_stop();
        // tiny_http's `recv` cannot wait on a channel: each `unblock` wakes one thread, which
        // then sees the stop.
        for _ in 0..threads.len() {
            self.server.unblock();
        }
        threads.wait(deadline)
    }
}

impl Component for Handlers {
    fn name(&self) -> &'static str {
        "http-handlers"
    }

    fn stop(mut self: Box<Self>, deadline: Instant) -> usize {
        self.shut(deadline)
    }
}

fn serve(
    server: &tiny_http::Server,
    state: &AppState,
    stop: &Stop,
    mode: Mode,
    poke: &Poke,
    accept_died: &crossbeam_channel::Sender<String>,
) {
    loop {
        match server.recv() {
            Ok(mut request) => {
                let started = Instant::now();
                poke.poke();
                let client = match mode {
                    Mode::Gate => gate_client(&request),
                    Mode::Direct => {
                        if wants_upgrade(&request) {
                            // tiny_http would hand the rest of the connection to the body.
                            let reply = Reply::from(Refusal::upgrade_refused())
                                .with_header("Connection", "close");
                            let _ = request.respond(reply.into_tiny());
                            continue;
                        }
                        request.remote_addr().copied()
                    }
                };
                let reply = router::dispatch(state, &mut request, client, started);
                let status = reply.status;
                if let Err(e) = request.respond(reply.into_tiny()) {
                    log::debug!("could not send a {status} answer: {e}");
                }
            }
            Err(_) if stop.is_stopping() => return,
            // tiny_http hands out an error only when its accept loop has ended: the listener
            // is gone. The watchdog decides what happens next.
            Err(e) => {
                log::error!("http: the listener stopped accepting: {e}");
                let _ = accept_died.try_send(e.to_string());
            }
        }
    }
}

/// The client the gate named: only the gate can reach tiny_http in gate mode, and it
/// replaces any such header a client sent. Missing or unreadable: no address, which no
/// address-based rule trusts.
fn gate_client(request: &tiny_http::Request) -> Option<SocketAddr> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(CLIENT_HEADER))
        .and_then(|h| h.value.as_str().parse().ok())
}

/// `Connection: upgrade`, as tiny_http reads it (the first `Connection` header).
fn wants_upgrade(request: &tiny_http::Request) -> bool {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .is_some_and(|h| h.value.as_str().to_ascii_lowercase().contains("upgrade"))
}
