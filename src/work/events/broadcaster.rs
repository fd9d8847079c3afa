//! The WebSocket broadcaster: one thread, non-blocking sockets, bounded
//! everything.
//!
//! # Why this shape
//!
//! * **One thread for all clients.** The stream is a low-value mirror of the
//!   daemon's activity; spending a thread per dashboard would let an
//!   unauthenticated peer make us spawn threads. One thread multiplexing
//!   non-blocking sockets keeps the cost fixed (`MAX_CLIENTS` caps memory).
//! * **Producers only ever `try_send`.** Ingest and workers call
//!   [`EventSink::publish`] on their hot path. It never blocks, never
//!   serializes and never touches a socket: if the broadcaster falls behind,
//!   the bounded queue fills and further events are counted and discarded.
//! * **Non-blocking writes with a per-client budget.** A blocking `write` to a
//!   client that stopped reading would stall the broadcaster and, through the
//!   full queue, every other client. Instead each client gets a bounded
//!   outgoing buffer; a client that overflows it, or makes no progress for
//!   `STALL_LIMIT`, is disconnected. Slow clients lose their connection, never
//!   anyone else's events.
//! * **Handshakes are driven as a state machine in the same loop** (tungstenite
//!   `MidHandshake`) with a deadline, so a peer that connects and sends nothing
//!   costs one pending slot for two seconds instead of stalling the loop.
//! * **Slots are counted after authentication.** `MAX_CLIENTS` counts only
//!   clients whose handshake passed the access check. Handshakes in progress
//!   have their own bounded list; when it is full the oldest one is closed to
//!   make room, so sockets that connect and never finish a handshake cannot
//!   lock out a client with the right token (it finishes its handshake in one
//!   loop turn; they wait out their deadline at the front of the list).
//! * **Asleep while nobody watches.** The loop turns every `TICK` only while a
//!   client is connected or a handshake is under way (reads, handshakes and
//!   stall checks need it). With neither it blocks in `accept` and costs no
//!   wake-ups at all: producers send nothing then
//!   (`publish` checks the client count), and [`Broadcaster::stop`] wakes the
//!   `accept` by connecting to the listener, as the HTTP gate does at stop.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};
use log::{debug, error, info, warn};
use serde_json::Value;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tungstenite::handshake::MidHandshake;
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{
    Error as WsError, HandshakeError, Message, ServerHandshake, Utf8Bytes, WebSocket,
};

use super::event::Event;
use crate::base::access::{self, Caller, Denied, Door};
use crate::base::lifecycle::{Component, Stop, Stopper, Thread};
use crate::base::text::parse_query;

/// The only path that upgrades; anything else gets a 404 during the handshake.
const WS_PATH: &str = "/ws";
/// Events buffered between producers and the broadcaster thread. Large enough
/// to absorb bursts between two loop iterations, small enough to bound memory.
const EVENT_QUEUE: usize = 8192;
/// Established (authenticated) connections.
const MAX_CLIENTS: usize = 64;
/// Connections allowed to sit in the handshake at once; a new one past this closes the
/// oldest.
const MAX_PENDING_HANDSHAKES: usize = 64;
/// A peer must complete the HTTP upgrade within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on how long the loop sleeps while a client is connected or a handshake is
/// under way: accept/handshake/read latency and shutdown reaction time.
const TICK: Duration = Duration::from_millis(50);
/// With nobody connected the loop sleeps in `accept`; the wake-up connection of
/// [`Broadcaster::stop`] ends that sleep at stop. This bound is only the fallback should that
/// connection ever fail (a stop then takes at most this long); it costs one wake-up a minute.
const IDLE_ACCEPT_LIMIT: Duration = Duration::from_secs(60);
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Per-client outgoing budget (tungstenite's write buffer, on top of whatever
/// the kernel socket buffer holds). Exceeding it drops the client.
const MAX_CLIENT_BUFFER: usize = 256 * 1024;
/// Frames are coalesced up to this size before a `write` syscall, so a burst
/// of small events costs a few syscalls per client, not one per event.
const WRITE_COALESCE: usize = 16 * 1024;
/// A client whose socket has refused bytes (WouldBlock) continuously for this
/// long is dropped even if its buffer budget is not exhausted.
const STALL_LIMIT: Duration = Duration::from_secs(2);
/// A single event larger than this is skipped (and counted as dropped) rather
/// than blowing every client's buffer budget at once.
const MAX_EVENT_BYTES: usize = 128 * 1024;
/// Events drained per loop iteration, so accepts and reads are not starved
/// under a sustained flood.
const BATCH: usize = 1024;
/// Incoming frames read per client per iteration (clients have nothing to say;
/// this only bounds a chatty or hostile one).
const READS_PER_TICK: usize = 32;
/// How long shutdown waits for clients to acknowledge the Close frame.
const CLOSE_GRACE: Duration = Duration::from_millis(300);

#[derive(Debug, Default)]
struct Shared {
    /// Established clients. Read on every publish to skip all work when
    /// nobody is watching.
    clients: AtomicUsize,
    /// Events discarded because the queue was full (or were too large).
    dropped: AtomicU64,
}

/// Producer handle for the live stream. Cheap to clone (a channel sender and
/// an `Arc`); hand one to every component that publishes.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<Sender<Event>>,
    shared: Arc<Shared>,
}

impl EventSink {
    /// A sink connected to nothing: `publish` is a no-op. For tests and tools
    /// that run the pipeline without a broadcaster.
    pub fn disabled() -> Self {
        EventSink {
            tx: None,
            shared: Arc::new(Shared::default()),
        }
    }

    /// Hand an event to the broadcaster. Never blocks.
    ///
    /// With no connected client this returns immediately (one relaxed atomic
    /// load). Otherwise the event is `try_send`-ed into a bounded queue; if the
    /// queue is full the event is discarded and counted in [`dropped`].
    /// Serialization happens later, on the broadcaster thread, once per event.
    ///
    /// [`dropped`]: EventSink::dropped
    pub fn publish(&self, ev: Event) {
        if !self.has_clients() {
            return;
        }
        if let Some(tx) = &self.tx {
            match tx.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
                // Broadcaster has shut down; the stream is gone, nothing to count.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Whether any client is connected. Producers may check this before
    /// building an expensive event (e.g. cloning an order) for `publish`.
    pub fn has_clients(&self) -> bool {
        self.client_count() > 0
    }

    /// Number of established WebSocket clients (updated by the broadcaster
    /// once per loop iteration).
    pub fn client_count(&self) -> usize {
        self.shared.clients.load(Ordering::Relaxed)
    }

    /// Events discarded because the broadcaster could not keep up (queue
    /// full) or because a single event exceeded the per-event size limit.
    /// Events published while no client is connected are not counted.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The broadcaster's port, bound but not yet served, and the channel its sink feeds. Bound
/// early, like the HTTP listener, so a taken port fails a start before anything runs.
#[derive(Debug)]
pub struct BoundEvents {
    listener: TcpListener,
    local_addr: SocketAddr,
    rx: Receiver<Event>,
    tx: Sender<Event>,
    shared: Arc<Shared>,
}

impl BoundEvents {
    /// Binds `listen` (e.g. `127.0.0.1:8002`, port 0 allowed); the sink publishes nothing
    /// until [`BoundEvents::serve`] has a client.
    pub fn bind(listen: &str) -> io::Result<(BoundEvents, EventSink)> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        // Bounds the blocking `accept` of an idle loop (see `IDLE_ACCEPT_LIMIT`).
        socket2::SockRef::from(&listener).set_read_timeout(Some(IDLE_ACCEPT_LIMIT))?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = bounded(EVENT_QUEUE);
        let shared = Arc::new(Shared::default());
        let sink = EventSink {
            tx: Some(tx.clone()),
            shared: Arc::clone(&shared),
        };
        let bound = BoundEvents {
            listener,
            local_addr,
            rx,
            tx,
            shared,
        };
        Ok((bound, sink))
    }

    /// The bound address (useful when `listen` used port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts the broadcaster thread.
    ///
    /// `stats` is called on the broadcaster thread about once a second while
    /// at least one client is connected; its value is sent as a `stats` event.
    /// It must be cheap and must not block (read atomics, not the database).
    ///
    /// `admin_token`, `allowed_hosts`: the same rule as the admin API (see
    /// [`crate::base::access::admin`]).
    pub fn serve(
        self,
        admin_token: Option<String>,
        allowed_hosts: Vec<String>,
        stats: Box<dyn Fn() -> Value + Send>,
    ) -> io::Result<Broadcaster> {
        let stopper = Stopper::new();
        let local_addr = self.local_addr;
        let state = Loop {
            listener: self.listener,
            token: admin_token.map(Arc::from),
            allowed_hosts: allowed_hosts.into(),
            rx: self.rx,
            _keepalive: self.tx,
            stop: stopper.signal(),
            stats,
            shared: self.shared,
            pending: Vec::new(),
            clients: Vec::new(),
        };
        let thread = Thread::spawn("events-ws", move || state.run())?;
        info!("events: WebSocket broadcaster listening on ws://{local_addr}{WS_PATH}");
        Ok(Broadcaster {
            stopper,
            thread,
            local_addr,
        })
    }
}

/// Handle to the running broadcaster thread.
#[derive(Debug)]
pub struct Broadcaster {
    stopper: Stopper,
    thread: Thread,
    local_addr: SocketAddr,
}

impl Broadcaster {
    /// Binds `listen` and starts the broadcaster thread at once (see `BoundEvents`).
    pub fn start(
        listen: &str,
        admin_token: Option<String>,
        allowed_hosts: Vec<String>,
        stats: Box<dyn Fn() -> Value + Send>,
    ) -> io::Result<(Broadcaster, EventSink)> {
        let (bound, sink) = BoundEvents::bind(listen)?;
        Ok((bound.serve(admin_token, allowed_hosts, stats)?, sink))
    }

    /// The bound address (useful when `listen` used port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes every client (with a Close frame) and waits for the thread until `deadline`;
    /// false when it was left behind.
    pub fn stop(mut self, deadline: Instant) -> bool {
        self.stopper.stop();
        // With nobody connected the thread sleeps in a blocking `accept`, which no channel can
        // wake: a connection does, and it then sees the stop. When it is not asleep the
        // connection is never accepted and goes with the listener.
        let _ = TcpStream::connect_timeout(
            &crate::base::net::reachable(self.local_addr),
            Duration::from_secs(1),
        );
        self.thread.join_by(deadline) != crate::base::lifecycle::Joined::LeftBehind
    }
}

impl Component for Broadcaster {
    fn name(&self) -> &'static str {
        "events"
    }

    fn stop(self: Box<Self>, deadline: Instant) -> usize {
        usize::from(!Broadcaster::stop(*self, deadline))
    }
}

/// Handshake check: only `/ws` upgrades, and only for whoever may call the admin API —
/// events carry orders (emails, amounts). The rule itself is [`access::admin`] through the
/// event-stream door. A named type so the pending handshake type is nameable and storable.
struct AccessCheck {
    token: Option<Arc<str>>,
    allowed_hosts: Arc<[String]>,
    peer: SocketAddr,
}

/// The handshake request as the access rules read it.
struct Upgrade<'a> {
    request: &'a Request,
    peer: SocketAddr,
    query: Vec<(String, String)>,
}

impl Caller for Upgrade<'_> {
    fn peer(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn method(&self) -> &str {
        self.request.method().as_str()
    }
}

/// A refused handshake, with the JSON error body the HTTP API uses.
fn refuse(status: StatusCode, code: &str, why: &str) -> ErrorResponse {
    let body = serde_json::json!({ "error": code, "message": why });
    let mut err = ErrorResponse::new(Some(format!("{body}\n")));
    *err.status_mut() = status;
    if let Ok(json) = "application/json".parse() {
        err.headers_mut().insert("Content-Type", json);
    }
    err
}

impl Callback for AccessCheck {
    // The signature is dictated by tungstenite's `Callback` trait.
    #[allow(clippy::result_large_err)]
    fn on_request(self, req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
        if req.uri().path() != WS_PATH {
            return Err(refuse(StatusCode::NOT_FOUND, "not_found", "not found"));
        }
        let upgrade = Upgrade {
            request: req,
            peer: self.peer,
            query: parse_query(req.uri().query().unwrap_or("")),
        };
        let token = self.token.as_deref();
        match access::admin(token, &self.allowed_hosts, &upgrade, Door::EventStream) {
            Ok(()) => Ok(resp),
            Err(denied @ (Denied::TokenMissing | Denied::TokenWrong)) => Err(refuse(
                StatusCode::UNAUTHORIZED,
                denied.code(),
                "the event stream needs the admin token: ws://host:port/ws?token=<server.admin_token>",
            )),
            Err(denied @ Denied::LocalOnly) => Err(refuse(
                StatusCode::FORBIDDEN,
                denied.code(),
                "the event stream answers loopback clients only while server.admin_token is unset",
            )),
            Err(denied @ Denied::Forwarded) => Err(refuse(
                StatusCode::FORBIDDEN,
                denied.code(),
                "this handshake came through a proxy (forwarding headers), so it is not trusted as a loopback client; use ?token=<server.admin_token>",
            )),
            Err(denied @ Denied::ForeignHost) => Err(refuse(
                StatusCode::FORBIDDEN,
                denied.code(),
                "without server.admin_token the Host header must be a loopback host or listed in server.allowed_hosts",
            )),
            Err(denied @ Denied::CrossOrigin) => Err(refuse(
                StatusCode::FORBIDDEN,
                denied.code(),
                "a handshake from a page of another host (Origin) is refused while server.admin_token is unset",
            )),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // Clients only send pings/close; don't allocate 128 KiB each for reads.
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
        .write_buffer_size(WRITE_COALESCE)
        .max_write_buffer_size(MAX_CLIENT_BUFFER)
}

fn would_block(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted))
}

struct Pending {
    mid: MidHandshake<ServerHandshake<TcpStream, AccessCheck>>,
    peer: SocketAddr,
    deadline: Instant,
    /// The same socket, to answer a plain HTTP request that tungstenite refuses without a
    /// word (see [`answer_upgrade_required`]).
    reply: Option<TcpStream>,
}

/// A request to `/ws` that is not a WebSocket upgrade (no `Upgrade`/`Connection` headers or
/// key, e.g. a browser or `curl` opening the URL) gets `426 Upgrade Required` with
/// `Upgrade: websocket` and a JSON error, instead of a closed connection.
fn answer_upgrade_required(e: &WsError, reply: Option<TcpStream>) {
    use tungstenite::error::ProtocolError as P;
    let not_an_upgrade = matches!(
        e,
        WsError::Protocol(
            P::MissingConnectionUpgradeHeader
                | P::MissingUpgradeWebSocketHeader
                | P::MissingSecWebSocketVersionHeader
                | P::MissingSecWebSocketKey
        )
    );
    let Some(mut stream) = reply.filter(|_| not_an_upgrade) else {
        return;
    };
    let body = serde_json::json!({
        "error": "upgrade_required",
        "message": "this is the live event stream: connect with a WebSocket client (Upgrade: websocket)",
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // A few hundred bytes on a fresh socket fit its send buffer: one non-blocking write.
    let _ = stream.write_all(format!("{head}{body}").as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

struct Client {
    ws: WebSocket<TcpStream>,
    peer: SocketAddr,
    /// Since when the socket has been refusing bytes (reset on a full flush).
    stalled_since: Option<Instant>,
}

/// Why a client left; decides the log level.
enum Gone {
    /// Orderly close or peer hung up.
    Closed,
    /// We cut it off (too slow, protocol error, I/O error).
    Dropped(String),
}

impl Client {
    fn log_gone(&self, gone: Gone) {
        match gone {
            Gone::Closed => info!("events: client {} disconnected", self.peer),
            Gone::Dropped(why) => warn!("events: dropping client {}: {why}", self.peer),
        }
    }

    /// Read and discard whatever the client sent. Reading is also what makes
    /// tungstenite answer pings and complete a client-initiated close.
    fn pump_reads(&mut self) -> Result<(), Gone> {
        for _ in 0..READS_PER_TICK {
            match self.ws.read() {
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(()),
                Err(WsError::ConnectionClosed) => return Err(Gone::Closed),
                // A frame or message over `ws_config`'s limits: say so with close code 1009
                // (RFC 6455 "message too big") before the socket is dropped.
                Err(WsError::Capacity(e)) => {
                    let close = CloseFrame {
                        code: CloseCode::Size,
                        reason: "message too big".into(),
                    };
                    let _ = self.ws.close(Some(close));
                    let _ = self.ws.flush();
                    return Err(Gone::Dropped(format!("read: {e} (closed with 1009)")));
                }
                Err(WsError::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => return Err(Gone::Closed),
                Err(e) => return Err(Gone::Dropped(format!("read: {e}"))),
            }
        }
        Ok(())
    }

    /// Queue one frame. WouldBlock is fine: the frame stays in the client's
    /// buffer and `flush` retries it; only overflowing the budget is fatal.
    fn queue(&mut self, msg: &Message) -> Result<(), Gone> {
        match self.ws.write(msg.clone()) {
            Ok(()) => Ok(()),
            Err(e) if would_block(&e) => Ok(()),
            Err(WsError::WriteBufferFull(_)) => Err(Gone::Dropped(format!(
                "too slow (more than {} KiB of undelivered events)",
                MAX_CLIENT_BUFFER / 1024
            ))),
            Err(WsError::ConnectionClosed) => Err(Gone::Closed),
            Err(e) => Err(Gone::Dropped(format!("write: {e}"))),
        }
    }

    /// Push buffered bytes to the socket without blocking; track stalls.
    fn flush(&mut self, now: Instant) -> Result<(), Gone> {
        match self.ws.flush() {
            Ok(()) => {
                self.stalled_since = None;
                Ok(())
            }
            Err(e) if would_block(&e) => {
                let since = *self.stalled_since.get_or_insert(now);
                if now.duration_since(since) > STALL_LIMIT {
                    Err(Gone::Dropped(format!(
                        "too slow (not reading for more than {}s)",
                        STALL_LIMIT.as_secs()
                    )))
                } else {
                    Ok(())
                }
            }
            Err(WsError::ConnectionClosed) => Err(Gone::Closed),
            Err(e) => Err(Gone::Dropped(format!("flush: {e}"))),
        }
    }
}

/// What an idle wait ended with.
enum Idle {
    /// The stop was given.
    Stop,
    /// A peer connected.
    Peer(TcpStream, SocketAddr),
    /// Nothing (the wait's bound passed, or accept failed): look again.
    Nothing,
}

/// State owned by the broadcaster thread.
struct Loop {
    listener: TcpListener,
    /// `server.admin_token`, checked at each handshake.
    token: Option<Arc<str>>,
    /// `server.allowed_hosts`, for loopback trust.
    allowed_hosts: Arc<[String]>,
    rx: Receiver<Event>,
    /// Keeps `rx` connected even after every `EventSink` is dropped, so
    /// `select!` never spins on a disconnected channel.
    _keepalive: Sender<Event>,
    stop: Stop,
    stats: Box<dyn Fn() -> Value + Send>,
    shared: Arc<Shared>,
    pending: Vec<Pending>,
    clients: Vec<Client>,
}

impl Loop {
    fn run(mut self) {
        // However the thread ends (including a panic in the `stats` closure),
        // publish() must become a no-op rather than filling a dead queue.
        let _reset = ResetClientsOnExit(Arc::clone(&self.shared));
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            if self.clients.is_empty() && self.pending.is_empty() {
                match self.wait_for_peer() {
                    Idle::Stop => break,
                    Idle::Peer(stream, peer) => self.admit(stream, peer, Instant::now()),
                    Idle::Nothing => {}
                }
            } else {
                select! {
                    recv(self.stop.receiver()) -> _ => break,
                    recv(self.rx) -> ev => {
                        if let Ok(ev) = ev {
                            batch.push(ev);
                        }
                    }
                    default(TICK) => {}
                }
            }
            while batch.len() < BATCH {
                match self.rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }

            let now = Instant::now();
            self.accept_new(now);
            self.advance_handshakes(now);
            self.read_clients();
            self.broadcast(batch.drain(..));
            if now >= next_stats {
                // Don't try to "catch up" missed ticks after a stall.
                next_stats = now + STATS_EVERY;
                if !self.clients.is_empty() {
                    let ev = Event::Stats((self.stats)());
                    self.broadcast(std::iter::once(ev));
                }
            }
            self.flush_clients(now);
            self.shared
                .clients
                .store(self.clients.len(), Ordering::Relaxed);

            if self.stop.is_stopping() {
                break;
            }
        }
        self.shared.clients.store(0, Ordering::Relaxed);
        self.close_all();
        info!("events: broadcaster stopped");
    }

    /// Nobody connected and no handshake under way: nothing to do until a peer connects, so
    /// sleep in a blocking `accept` instead of turning every `TICK`.
    fn wait_for_peer(&mut self) -> Idle {
        if self.stop.is_stopping() {
            return Idle::Stop;
        }
        // Nothing is published while no client is connected; what a producer sent just as
        // the last one left is dropped here rather than kept through the sleep.
        self.discard_events();
        if let Err(e) = self.listener.set_nonblocking(false) {
            warn!("events: cannot wait in accept ({e}); polling instead");
            thread::sleep(TICK);
            return Idle::Nothing;
        }
        let accepted = self.listener.accept();
        if let Err(e) = self.listener.set_nonblocking(true) {
            // The loop cannot run with a blocking listener; the stream ends (publish becomes
            // a no-op) rather than stalling in `accept_new`.
            error!("events: cannot make the listener non-blocking again ({e}); stream stopped");
            return Idle::Stop;
        }
        if self.stop.is_stopping() {
            // Most likely the stop's wake-up connection.
            return Idle::Stop;
        }
        // Events sent while this peer was not yet a client are not for it.
        self.discard_events();
        match accepted {
            Ok((stream, peer)) => Idle::Peer(stream, peer),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Idle::Nothing
            }
            Err(e) => {
                // E.g. EMFILE: wait a tick rather than spinning.
                warn!("events: accept failed: {e}");
                thread::sleep(TICK);
                Idle::Nothing
            }
        }
    }

    /// Drops queued events unserialized.
    fn discard_events(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    fn accept_new(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. EMFILE: try again next tick rather than spinning.
                    warn!("events: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// A new connection: rejected when the slots are full, else its handshake starts.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        if self.clients.len() >= MAX_CLIENTS {
            warn!("events: rejecting {peer}: too many clients");
            reject_busy(stream);
            return;
        }
        if self.pending.len() >= MAX_PENDING_HANDSHAKES {
            // The oldest has had the longest to finish and has not: it goes.
            let oldest = self.pending.remove(0);
            debug!(
                "events: closing {}: handshake unfinished and {peer} is waiting",
                oldest.peer
            );
        }
        if let Err(e) = stream.set_nonblocking(true) {
            warn!("events: rejecting {peer}: set_nonblocking: {e}");
            return;
        }
        let _ = stream.set_nodelay(true);
        let check = AccessCheck {
            token: self.token.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            peer,
        };
        let reply = stream.try_clone().ok();
        let result = ServerHandshake::start(stream, check, Some(ws_config())).handshake();
        self.handshake_step(result, peer, now + HANDSHAKE_TIMEOUT, reply);
    }

    fn advance_handshakes(&mut self, now: Instant) {
        for p in std::mem::take(&mut self.pending) {
            if now >= p.deadline {
                debug!("events: {} did not complete the handshake in time", p.peer);
                continue;
            }
            let result = p.mid.handshake();
            self.handshake_step(result, p.peer, p.deadline, p.reply);
        }
    }

    fn handshake_step(
        &mut self,
        result: Result<
            WebSocket<TcpStream>,
            HandshakeError<ServerHandshake<TcpStream, AccessCheck>>,
        >,
        peer: SocketAddr,
        deadline: Instant,
        reply: Option<TcpStream>,
    ) {
        match result {
            Ok(mut ws) => {
                if self.clients.len() >= MAX_CLIENTS {
                    warn!("events: rejecting {peer}: too many clients");
                    let _ = ws.close(None);
                    return;
                }
                info!("events: client {peer} connected");
                self.clients.push(Client {
                    ws,
                    peer,
                    stalled_since: None,
                });
            }
            Err(HandshakeError::Interrupted(mid)) => self.pending.push(Pending {
                mid,
                peer,
                deadline,
                reply,
            }),
            Err(HandshakeError::Failure(e)) => {
                debug!("events: handshake with {peer} failed: {e}");
                answer_upgrade_required(&e, reply);
            }
        }
    }

    fn read_clients(&mut self) {
        self.clients.retain_mut(|c| match c.pump_reads() {
            Ok(()) => true,
            Err(gone) => {
                c.log_gone(gone);
                false
            }
        });
    }

    /// Serialize each event once and queue it on every client. With no
    /// clients the events are discarded unserialized.
    fn broadcast(&mut self, events: impl Iterator<Item = Event>) {
        if self.clients.is_empty() {
            return;
        }
        for ev in events {
            let text = ev.to_json();
            if text.len() > MAX_EVENT_BYTES {
                warn!(
                    "events: skipping {}-byte event (limit {MAX_EVENT_BYTES})",
                    text.len()
                );
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // `Utf8Bytes` is reference counted: the clone per client is cheap.
            let msg = Message::Text(Utf8Bytes::from(text));
            self.clients.retain_mut(|c| match c.queue(&msg) {
                Ok(()) => true,
                Err(gone) => {
                    c.log_gone(gone);
                    false
                }
            });
            if self.clients.is_empty() {
                return;
            }
        }
    }

    fn flush_clients(&mut self, now: Instant) {
        self.clients.retain_mut(|c| match c.flush(now) {
            Ok(()) => true,
            Err(gone) => {
                c.log_gone(gone);
                false
            }
        });
    }

    /// Send Close (1001 going away) to everyone and give them a moment to
    /// acknowledge; whoever hasn't by then is simply disconnected.
    fn close_all(&mut self) {
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: Utf8Bytes::from("server shutting down"),
        };
        for c in &mut self.clients {
            let _ = c.ws.close(Some(frame.clone()));
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        while !self.clients.is_empty() && Instant::now() < deadline {
            self.clients.retain_mut(|c| {
                match c.ws.flush() {
                    Ok(()) => {}
                    Err(e) if would_block(&e) => {}
                    Err(_) => return false,
                }
                for _ in 0..READS_PER_TICK {
                    match c.ws.read() {
                        Ok(_) => {}
                        Err(e) if would_block(&e) => return true,
                        Err(_) => return false,
                    }
                }
                true
            });
            if !self.clients.is_empty() {
                thread::sleep(Duration::from_millis(10));
            }
        }
        self.clients.clear();
        self.pending.clear();
    }
}

struct ResetClientsOnExit(Arc<Shared>);

impl Drop for ResetClientsOnExit {
    fn drop(&mut self) {
        self.0.clients.store(0, Ordering::Relaxed);
    }
}

/// Best-effort 503 for connections over the cap; the socket is closed right after.
fn reject_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(uri: &str, authorization: Option<&str>, peer: &str, token: Option<&str>) -> u16 {
        let mut req = Request::builder().uri(uri);
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        let check = AccessCheck {
            token: token.map(Arc::from),
            allowed_hosts: Arc::from(Vec::new()),
            peer: peer.parse().unwrap(),
        };
        match check.on_request(&req.body(()).unwrap(), Response::default()) {
            Ok(resp) => resp.status().as_u16(),
            Err(refused) => refused.status().as_u16(),
        }
    }

    const REMOTE: &str = "10.0.0.7:4000";

    #[test]
    fn the_handshake_accepts_the_bearer_scheme_in_any_case_like_the_api() {
        for scheme in ["Bearer", "bearer"] {
            let header = format!("{scheme} s3cret");
            assert_eq!(
                handshake("/ws", Some(&header), REMOTE, Some("s3cret")),
                200,
                "{scheme}"
            );
        }
        assert_eq!(
            handshake("/ws", Some("bearer nope"), REMOTE, Some("s3cret")),
            401
        );
    }

    #[test]
    fn the_handshake_takes_a_decoded_query_token() {
        assert_eq!(
            handshake("/ws?token=s3%2Fcret", None, REMOTE, Some("s3/cret")),
            200
        );
        assert_eq!(handshake("/ws", None, REMOTE, Some("s3/cret")), 401);
    }

    #[test]
    fn without_a_token_only_loopback_peers_upgrade() {
        assert_eq!(handshake("/ws", None, "127.0.0.1:1", None), 200);
        assert_eq!(handshake("/ws", None, REMOTE, None), 403);
        assert_eq!(handshake("/other", None, "127.0.0.1:1", None), 404);
    }
}
