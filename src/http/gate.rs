//! The edge gate: what listens on hookvault's HTTP port. It reads each request itself,
//! checks its framing, and hands tiny_http only requests that are complete, so tiny_http's
//! weaknesses never meet a client:
//!
//! - **Header size**: a request head over [`MAX_HEAD_BYTES`] gets `431` (tiny_http reads a
//!   header line with no limit);
//! - **Framing**: a `Content-Length` that is not a plain number of bytes (`-1`, `5x`, a list,
//!   one too large for 64 bits), or given together with `Transfer-Encoding`, gets `400`, as
//!   does a transfer coding other than `chunked`; a header with a byte that is not ASCII gets
//!   `400` (tiny_http drops such a connection without an answer). The gate then closes the
//!   connection, which tiny_http cannot do for the bytes that follow a bad header.
//! - **Size**: a declared or decoded body over `server.max_body_bytes` gets `413` unread
//!   (tiny_http, dropping a request whose body it has not read, allocates the whole declared
//!   length to skip it: `Content-Length: 99999999999` aborted the process).
//! - **Time**: from its first byte a request has `server.body_timeout_s` to arrive whole, and
//!   may pause at most `server.idle_timeout_s`; else `408`. A body that ends early gets `400`.
//!
//! Only then is the request passed, head and body at once, over a loopback connection to
//! tiny_http's listener (one per client connection, opened at its first request), and
//! tiny_http's answers are copied back as they come. So a handler thread never waits for a
//! client: slow senders hold a gate thread each (as they held a tiny_http thread before),
//! never a handler, and a normal webhook keeps moving. Chunked bodies are decoded here and
//! passed with a `Content-Length`.
//!
//! Handlers learn the client's address through [`Peers`]: tiny_http sees the gate's
//! loopback connection, which the gate registers under the client's address.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// The longest request head (request line and headers) the gate reads; webhook heads are a
/// few hundred bytes to a few KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest line of a chunked body's framing (a chunk size with extensions, a trailer).
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// How long a refused client may keep sending after its answer before the socket closes
/// (closing with unread bytes would reset the connection and could lose the answer).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// How long a stop waits for connections to finish the requests they already passed on.
const STOP_GRACE: Duration = Duration::from_secs(2);
const THREAD_STACK: usize = 128 * 1024;

/// The gate's limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

struct Shared {
    stopping: AtomicBool,
    next_id: AtomicU64,
    /// Open client connections, to close them at a stop.
    clients: Mutex<HashMap<u64, TcpStream>>,
    /// The gate's end of each loopback connection to tiny_http → the client it carries.
    peers: Mutex<HashMap<SocketAddr, SocketAddr>>,
    openings: Arc<Openings>,
}

/// What the gate's connections to tiny_http tell the edge's helper threads, so they need not
/// poll: the stall guard ([`super::stall_guard`]) acts only when tiny_http gets new
/// connections close together, and the listener watchdog ([`super::listener_watchdog`]) need
/// not ask when new clients are being answered anyway.
pub struct Openings {
    /// Connections opened to tiny_http (the gate's and the stall guard's nudges): each is a
    /// new task in tiny_http's pool.
    opened: AtomicU64,
    /// When the last one was opened, in milliseconds since `epoch` plus `LONE_GAP`.
    last_ms: AtomicU64,
    epoch: Instant,
    /// Of the gate's, the ones whose first answer came back: for a new client, the whole path
    /// (the gate's accept, tiny_http's accept and pool, a handler) worked.
    answered: AtomicU64,
    /// When the last of those answers came, in milliseconds since `epoch` plus `LONE_GAP`.
    answered_ms: AtomicU64,
    /// Wakes the stall guard after an opening that came close after another (one pending at
    /// most).
    wake: Sender<()>,
    /// The gate could not accept a client or reach tiny_http: the watchdog checks at once.
    trouble: (Sender<()>, Receiver<()>),
}

impl Openings {
    /// An opening with none this long before it cannot be stranded by tiny_http's pool (a
    /// woken pool thread runs within far less), so it does not wake the stall guard.
    pub const LONE_GAP: Duration = Duration::from_secs(1);

    /// The counters, and the receiver the stall guard waits on.
    pub fn new() -> (Arc<Openings>, Receiver<()>) {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let openings = Openings {
            opened: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            answered: AtomicU64::new(0),
            answered_ms: AtomicU64::new(0),
            wake,
            trouble: crossbeam_channel::bounded(1),
        };
        (Arc::new(openings), woken)
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// How long ago the last new connection got its first answer (`Duration::MAX`: none yet).
    pub fn since_answered(&self) -> Duration {
        match self.answered_ms.load(Ordering::Relaxed) {
            0 => Duration::MAX,
            at => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(at) - Self::LONE_GAP),
        }
    }

    /// Where the gate reports that it could not accept a client or reach tiny_http.
    pub fn trouble(&self) -> Receiver<()> {
        self.trouble.1.clone()
    }

    fn report_trouble(&self) {
        let _ = self.trouble.0.try_send(());
    }

    fn record_answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.answered_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since `epoch`, plus `LONE_GAP` (so the stored 0 is "never", and at
    /// least `LONE_GAP` before any opening).
    fn now_ms(&self) -> u64 {
        (self.epoch.elapsed() + Self::LONE_GAP).as_millis() as u64
    }

    /// Counts a connection opened to tiny_http; whether one came less than [`Self::LONE_GAP`]
    /// before it.
    pub fn record(&self) -> bool {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let before = self.last_ms.swap(now, Ordering::Relaxed);
        now.saturating_sub(before) < Self::LONE_GAP.as_millis() as u64
    }

    /// Counts the gate's connection, and wakes the stall guard when it came close after
    /// another.
    fn record_gate(&self) {
        if self.record() {
            let _ = self.wake.try_send(());
        }
    }
}

/// Which client a request tiny_http received came from.
#[derive(Clone)]
pub struct Peers(Arc<Shared>);

impl Peers {
    /// The client behind tiny_http's peer address: the gate's client for a connection the
    /// gate opened, else the peer itself (something on this host reached tiny_http's
    /// loopback listener directly).
    pub fn client_of(&self, peer: Option<SocketAddr>) -> Option<SocketAddr> {
        let peer = peer?;
        let peers = self.0.peers.lock().unwrap_or_else(|e| e.into_inner());
        Some(peers.get(&peer).copied().unwrap_or(peer))
    }
}

pub struct Gate {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    public: SocketAddr,
}

impl Gate {
    /// Serves `listener`, passing requests to tiny_http at `upstream`; counts its
    /// connections to tiny_http in `openings`.
    pub fn start(
        listener: TcpListener,
        upstream: SocketAddr,
        limits: Limits,
        openings: Arc<Openings>,
    ) -> Gate {
        let public = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            clients: Mutex::default(),
            peers: Mutex::default(),
            openings,
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("http-gate".into())
                .spawn(move || accept_loop(&listener, upstream, limits, &shared))
                .expect("spawn the gate's accept thread")
        };
        Gate {
            shared,
            accept,
            public,
        }
    }

    pub fn peers(&self) -> Peers {
        Peers(self.shared.clone())
    }

    /// Stops accepting and reading requests; requests already passed on are answered (for
    /// up to `STOP_GRACE`), then every connection is closed, so a slow client never holds
    /// a stop.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread; it sees `stopping` and returns.
        let _ =
            TcpStream::connect_timeout(&crate::net::reachable(self.public), Duration::from_secs(1));
        let _ = self.accept.join();
        let clients = &self.shared.clients;
        for client in lock(clients).values() {
            let _ = client.shutdown(Shutdown::Read);
        }
        let until = Instant::now() + STOP_GRACE;
        while !lock(clients).is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        for client in lock(clients).values() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, limits: Limits, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (client, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                log::warn!("http: accept failed: {e}");
                shared.openings.report_trouble();
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Ok(registered) = client.try_clone() else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&shared.clients).insert(id, registered);
        let shared_conn = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                Connection::new(client, peer, upstream, limits, &shared_conn).serve();
                lock(&shared_conn.clients).remove(&id);
            });
        if let Err(e) = spawned {
            log::warn!("http: no thread for a connection from {peer}: {e}");
            lock(&shared.clients).remove(&id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a connection stops taking requests.
enum End {
    /// The client closed, went idle between requests, or the connection failed: no answer.
    Quiet,
    /// The request is refused with this answer, and the connection closed.
    Refuse(Refusal),
}

struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> End {
    End::Refuse(Refusal {
        status,
        code,
        message: message.into(),
    })
}

struct Connection<'a> {
    client: TcpStream,
    peer: SocketAddr,
    upstream_addr: SocketAddr,
    limits: Limits,
    shared: &'a Shared,
    /// Bytes read from the client and not yet passed on.
    buf: Vec<u8>,
    /// The client socket's read timeout as last set, so a read between requests (the idle
    /// timeout each time) costs no `setsockopt`.
    read_timeout: Option<Duration>,
    /// The request being passed on, head (as tiny_http will read it) and whole body, sent in
    /// one write; reused from request to request.
    out: Vec<u8>,
    upstream: Option<(TcpStream, JoinHandle<()>)>,
}

impl<'a> Connection<'a> {
    fn new(
        client: TcpStream,
        peer: SocketAddr,
        upstream_addr: SocketAddr,
        limits: Limits,
        shared: &'a Shared,
    ) -> Connection<'a> {
        Connection {
            client,
            peer,
            upstream_addr,
            limits,
            shared,
            buf: Vec::new(),
            read_timeout: None,
            out: Vec::new(),
            upstream: None,
        }
    }

    fn serve(mut self) {
        let _ = self.client.set_nodelay(true);
        let end = loop {
            match self.next_request() {
                Ok(last) => {
                    if let Err(e) = self.pass_on() {
                        log::debug!("http: could not pass a request from {} on: {e}", self.peer);
                        break End::Quiet;
                    }
                    if last {
                        break End::Quiet;
                    }
                }
                Err(end) => break end,
            }
        };
        // Answers to requests already passed on go out first (tiny_http answers them, then
        // sees the end of its input and closes; the copier ends with it).
        let registered = self
            .upstream
            .as_ref()
            .and_then(|(u, _)| u.local_addr().ok());
        if let Some((upstream, copier)) = self.upstream.take() {
            let _ = upstream.shutdown(Shutdown::Write);
            let _ = copier.join();
        }
        if let Some(addr) = registered {
            lock(&self.shared.peers).remove(&addr);
        }
        if let End::Refuse(refusal) = end {
            self.answer(&refusal);
        }
        let _ = self.client.shutdown(Shutdown::Both);
    }

    /// Reads more bytes from the client; `Ok(0)` when it closed. `deadline`: when the
    /// request must be complete (a pause is also bounded by the idle timeout).
    fn fill(&mut self, deadline: Option<Instant>) -> Result<usize, Stall> {
        let mut wait = self.limits.idle_timeout;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Stall::Deadline);
            }
            wait = wait.min(left);
        }
        if self.read_timeout != Some(wait) {
            self.client
                .set_read_timeout(Some(wait))
                .map_err(|_| Stall::Failed)?;
            self.read_timeout = Some(wait);
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.client.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(match deadline {
                        Some(d) if Instant::now() >= d => Stall::Deadline,
                        _ => Stall::Idle,
                    });
                }
                Err(_) => return Err(Stall::Failed),
            }
        }
    }

    /// Makes sure `self.buf` holds at least `len` bytes of the request begun at `deadline`.
    fn need(&mut self, len: usize, deadline: Instant, what: &str) -> Result<(), End> {
        while self.buf.len() < len {
            match self.fill(Some(deadline)) {
                Ok(0) => {
                    return Err(refuse(
                        400,
                        "incomplete_body",
                        format!(
                        "the connection ended before the {what} was complete; nothing was stored"
                    ),
                    ))
                }
                Ok(_) => {}
                Err(stall) => return Err(stall.answer(&self.limits)),
            }
        }
        Ok(())
    }

    /// Reads the next request and puts it in `self.out` as tiny_http will read it; whether
    /// the client said it is its last (`Connection: close`, or HTTP/1.0 without keep-alive).
    fn next_request(&mut self) -> Result<bool, End> {
        // Between requests the client may be silent for the idle timeout.
        while self.buf.is_empty() {
            match self.fill(None) {
                Ok(0) | Err(_) => return Err(End::Quiet),
                Ok(_) => {}
            }
        }
        let deadline = Instant::now() + self.limits.body_timeout;
        let head_len = self.read_head(deadline)?;
        let (framing, expects_continue, last) = {
            let head = Head::parse(&self.buf[..head_len])?;
            let framing = head.framing(self.limits.max_body_bytes)?;
            self.out.clear();
            head.write_for_tiny_http(framing, &mut self.out);
            (framing, head.expects_continue, head.last)
        };
        if expects_continue && self.buf.len() == head_len && framing != Framing::Empty {
            // The client waits for this before it sends the body. (A client that expects
            // 100-continue does not pipeline, so no earlier answer is being copied now.)
            let _ = self.client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let consumed = match framing {
            Framing::Empty => {
                self.out.extend_from_slice(b"\r\n");
                head_len
            }
            Framing::Length(n) => {
                let n = n as usize; // at most max_body_bytes, checked in framing()
                self.need(head_len + n, deadline, "body")?;
                self.out.extend_from_slice(b"\r\n");
                self.out
                    .extend_from_slice(&self.buf[head_len..head_len + n]);
                head_len + n
            }
            Framing::Chunked => {
                let (body, consumed) = self.read_chunked(head_len, deadline)?;
                self.out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                self.out.extend_from_slice(&body);
                consumed
            }
        };
        self.buf.drain(..consumed);
        Ok(last)
    }

    /// Reads until the blank line ending the head; its length including that line.
    fn read_head(&mut self, deadline: Instant) -> Result<usize, End> {
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], b"\r\n\r\n") {
                let len = searched + pos + 4;
                if len > MAX_HEAD_BYTES {
                    break;
                }
                return Ok(len);
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                break;
            }
            searched = self.buf.len().saturating_sub(3);
            match self.fill(Some(deadline)) {
                // A client that leaves in the middle of a head gets no answer, as from tiny_http.
                Ok(0) => return Err(End::Quiet),
                Ok(_) => {}
                Err(Stall::Failed) => return Err(End::Quiet),
                Err(stall) => return Err(stall.answer(&self.limits)),
            }
        }
        Err(refuse(
            431,
            "header_too_large",
            format!("the request line and headers are larger than {MAX_HEAD_BYTES} bytes; nothing was stored"),
        ))
    }

    /// Decodes a chunked body that starts at `start`, bounded like any other body; the body
    /// and where the request ends in `self.buf`.
    fn read_chunked(&mut self, start: usize, deadline: Instant) -> Result<(Vec<u8>, usize), End> {
        let max = self.limits.max_body_bytes;
        let mut body = Vec::new();
        let mut at = start;
        loop {
            let line_end = self.line(at, deadline)?;
            let line = &self.buf[at..line_end];
            let size_text = line.split(|&b| b == b';').next().unwrap_or(line);
            let size_text = std::str::from_utf8(size_text).unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .ok()
                .filter(|_| !size_text.is_empty() && !size_text.starts_with('+'))
                .ok_or_else(|| {
                    refuse(
                        400,
                        "bad_chunk",
                        format!("{size_text:?} is not a chunk size; nothing was stored"),
                    )
                })?;
            at = line_end + 2;
            if size == 0 {
                break;
            }
            if size > max.saturating_sub(body.len() as u64) {
                return Err(too_large(max));
            }
            let size = size as usize;
            self.need(at + size + 2, deadline, "chunked body")?;
            if &self.buf[at + size..at + size + 2] != b"\r\n" {
                return Err(refuse(
                    400,
                    "bad_chunk",
                    "a chunk is longer than its size says; nothing was stored",
                ));
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
        // Trailers, if any, up to the blank line; they are dropped.
        loop {
            let line_end = self.line(at, deadline)?;
            let blank = line_end == at;
            at = line_end + 2;
            if blank {
                break;
            }
        }
        Ok((body, at))
    }

    /// Where the CRLF-ended line starting at `at` ends (the index of its CR).
    fn line(&mut self, at: usize, deadline: Instant) -> Result<usize, End> {
        loop {
            if let Some(pos) = find(&self.buf[at.min(self.buf.len())..], b"\r\n") {
                return Ok(at + pos);
            }
            if self.buf.len() - at.min(self.buf.len()) > MAX_CHUNK_LINE {
                return Err(refuse(
                    400,
                    "bad_chunk",
                    "a chunk size line is too long; nothing was stored",
                ));
            }
            self.need(self.buf.len() + 1, deadline, "chunked body")?;
        }
    }

    /// Sends a complete request to tiny_http, connecting first if this is the first one.
    fn pass_on(&mut self) -> std::io::Result<()> {
        if self.upstream.is_none() {
            let upstream = TcpStream::connect_timeout(&self.upstream_addr, Duration::from_secs(5))
                .inspect_err(|_| self.shared.openings.report_trouble())?;
            upstream.set_nodelay(true)?;
            lock(&self.shared.peers).insert(upstream.local_addr()?, self.peer);
            self.shared.openings.record_gate();
            let copier = {
                let (mut from, mut to) = (upstream.try_clone()?, self.client.try_clone()?);
                let openings = self.shared.openings.clone();
                std::thread::Builder::new()
                    .name("http-copy".into())
                    .stack_size(THREAD_STACK)
                    .spawn(move || {
                        if copy_first_answer(&mut from, &mut to, &openings) {
                            let _ = std::io::copy(&mut from, &mut to);
                        }
                        let _ = to.flush();
                        // tiny_http closed (it answered a last request, or went idle): stop
                        // reading the client too. Writing stays open for a refusal.
                        let _ = to.shutdown(Shutdown::Read);
                    })?
            };
            self.upstream = Some((upstream, copier));
        }
        let (upstream, _) = self.upstream.as_mut().expect("connected above");
        // One write: tiny_http's connection thread wakes once for the whole request.
        upstream.write_all(&self.out)
    }

    /// The refusal as a JSON answer; the connection closes after it.
    fn answer(&mut self, refusal: &Refusal) {
        let body =
            serde_json::json!({ "error": refusal.code, "message": refusal.message }).to_string();
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            refusal.status,
            reason(refusal.status),
            body.len()
        );
        let _ = self.client.set_write_timeout(Some(LINGER));
        if self.client.write_all(head.as_bytes()).is_err()
            || self.client.write_all(body.as_bytes()).is_err()
        {
            return;
        }
        let _ = self.client.shutdown(Shutdown::Write);
        // Take what the client still sends for a moment, so the close does not reset the
        // connection before the answer is read.
        let until = Instant::now() + LINGER;
        let mut taken = 0;
        let mut sink = [0u8; 16 * 1024];
        while taken < LINGER_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.client.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.client.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => taken += n,
            }
        }
    }
}

/// Copies tiny_http's first bytes on a new connection, counting them (before the client can
/// see them, so a client that got its answer finds it counted); whether they came and went on
/// to the client (if not, the copy is over).
fn copy_first_answer(from: &mut TcpStream, to: &mut TcpStream, openings: &Openings) -> bool {
    let mut first = [0u8; 4 * 1024];
    loop {
        match from.read(&mut first) {
            Ok(0) => return false,
            Ok(n) => {
                openings.record_answered();
                return to.write_all(&first[..n]).is_ok();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Why a read gave up.
enum Stall {
    /// The request's deadline passed.
    Deadline,
    /// The client sent nothing for the idle timeout.
    Idle,
    /// The connection failed.
    Failed,
}

impl Stall {
    fn answer(self, limits: &Limits) -> End {
        match self {
            Stall::Deadline => refuse(
                408,
                "request_timeout",
                format!(
                    "the request was not complete within {} s (server.body_timeout_s); nothing was stored",
                    limits.body_timeout.as_secs()
                ),
            ),
            Stall::Idle => refuse(
                408,
                "request_timeout",
                format!(
                    "the request stopped arriving for {} s (server.idle_timeout_s); nothing was stored",
                    limits.idle_timeout.as_secs()
                ),
            ),
            Stall::Failed => End::Quiet,
        }
    }
}

fn too_large(limit: u64) -> End {
    refuse(
        413,
        "payload_too_large",
        format!(
            "the body is larger than server.max_body_bytes ({limit} bytes); nothing was stored"
        ),
    )
}

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// The parts of a request head the gate needs, read without allocating.
struct Head<'h> {
    /// The request line and header lines, without the blank line that ends them.
    text: &'h str,
    /// The first `Content-Length` value.
    content_length: Option<&'h str>,
    /// The first `Content-Length` value that is not a plain number or differs from the first.
    bad_content_length: Option<&'h str>,
    transfer_encoding: Option<&'h str>,
    expects_continue: bool,
    last: bool,
}

impl<'h> Head<'h> {
    fn parse(raw: &'h [u8]) -> Result<Head<'h>, End> {
        if let Some(bad) = raw.iter().find(|b| !b.is_ascii()) {
            return Err(refuse(
                400,
                "bad_header",
                format!("the request line or a header contains the byte 0x{bad:02x}, which is not ASCII; nothing was stored"),
            ));
        }
        let text = std::str::from_utf8(&raw[..raw.len() - 4]).expect("checked ASCII");
        let http10 = text
            .split("\r\n")
            .next()
            .is_some_and(|l| l.ends_with("HTTP/1.0"));
        let mut head = Head {
            text,
            content_length: None,
            bad_content_length: None,
            transfer_encoding: None,
            expects_continue: false,
            last: http10,
        };
        let plain = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        for line in text.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue; // tiny_http answers a malformed header line 400 itself
            };
            let value = value.trim_matches([' ', '\t']);
            if name.eq_ignore_ascii_case("content-length") {
                let first = *head.content_length.get_or_insert(value);
                if head.bad_content_length.is_none()
                    && (!plain(value)
                        || value.trim_start_matches('0') != first.trim_start_matches('0'))
                {
                    head.bad_content_length = Some(value);
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.transfer_encoding = Some(value);
            } else if name.eq_ignore_ascii_case("expect") {
                head.expects_continue = value.eq_ignore_ascii_case("100-continue");
            } else if name.eq_ignore_ascii_case("connection") {
                if contains_ignore_case(value, "close") {
                    head.last = true;
                } else if contains_ignore_case(value, "keep-alive") {
                    head.last = false;
                }
            }
        }
        Ok(head)
    }

    fn framing(&self, max_body: u64) -> Result<Framing, End> {
        if let Some(coding) = self.transfer_encoding {
            if self.content_length.is_some() {
                return Err(refuse(
                    400,
                    "bad_content_length",
                    "the request has both Content-Length and Transfer-Encoding; nothing was stored",
                ));
            }
            if !coding.eq_ignore_ascii_case("chunked") {
                return Err(refuse(
                    400,
                    "bad_transfer_encoding",
                    format!("Transfer-Encoding {coding:?} is not supported, only chunked; nothing was stored"),
                ));
            }
            return Ok(Framing::Chunked);
        }
        let Some(first) = self.content_length else {
            return Ok(Framing::Empty);
        };
        let bad = |v: &str| {
            refuse(
                400,
                "bad_content_length",
                format!("Content-Length {v:?} is not a plain number of bytes; nothing was stored"),
            )
        };
        if let Some(value) = self.bad_content_length {
            return Err(bad(value));
        }
        let length: u64 = first.parse().map_err(|_| bad(first))?;
        if length > max_body {
            return Err(too_large(max_body));
        }
        Ok(if length == 0 {
            Framing::Empty
        } else {
            Framing::Length(length)
        })
    }

    /// Appends the head tiny_http reads to `out`, without the blank line that ends it (a
    /// chunked body's decoded length goes before that): `Expect` answered here and dropped, a
    /// chunked body's framing dropped.
    fn write_for_tiny_http(&self, framing: Framing, out: &mut Vec<u8>) {
        for (i, line) in self.text.split("\r\n").enumerate() {
            if i > 0 {
                let name = line.split(':').next().unwrap_or("");
                let drop = if name.eq_ignore_ascii_case("expect") {
                    self.expects_continue
                } else {
                    framing == Framing::Chunked
                        && (name.eq_ignore_ascii_case("transfer-encoding")
                            || name.eq_ignore_ascii_case("content-length"))
                };
                if drop {
                    continue;
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Whether `haystack` contains `needle` (ASCII), ignoring case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}
