//! One client connection in gate mode, on a thread of its own, request and answer in
//! lockstep: read a whole request (head and body, bounded in size and time), hand it to
//! tiny_http over the connection's own hop connection, copy exactly its answer back
//! ([`super::answer`]), and only then read the next request. So tiny_http never holds a client's backlog, a client that does
//! not read its answers is cut off by the send timeout, and each request carries its own
//! client address.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::answer::{self, After, Failed};
use super::chunked::Decoder;
use super::framing::Framing;
use super::head::{self, Head};
use super::refusal::Refusal;
use super::shared::{Limits, Shared};

/// How long a refused client may keep sending after its answer before the socket closes
/// (closing with unread bytes would reset the connection and could lose the answer).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// How much is read from the client at a time.
const READ_SIZE: usize = 16 * 1024;

/// Why a connection stops.
enum End {
    /// The client closed, went idle between requests, or the connection failed: no answer.
    Quiet,
    /// The request is refused with this answer, and the connection closed.
    Refuse(Refusal),
}

impl From<Refusal> for End {
    fn from(r: Refusal) -> End {
        End::Refuse(r)
    }
}

pub struct Connection<'a> {
    client: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    shared: &'a Shared,
    /// Bytes read from the client and not used yet.
    buf: Vec<u8>,
    /// The request as tiny_http receives it; reused from request to request.
    out: Vec<u8>,
    body: Vec<u8>,
    /// The connection to tiny_http, kept from request to request.
    hop: Option<UnixStream>,
    /// Scratch space for tiny_http's answers.
    answer: Vec<u8>,
    read_timeout: Option<Duration>,
    /// When the request being read must be whole.
    deadline: Option<Instant>,
    answered_once: bool,
}

impl<'a> Connection<'a> {
    pub fn new(
        client: TcpStream,
        peer: SocketAddr,
        limits: Limits,
        shared: &'a Shared,
    ) -> Connection<'a> {
        Connection {
            client,
            peer,
            limits,
            shared,
            buf: Vec::new(),
            out: Vec::new(),
            body: Vec::new(),
            hop: None,
            answer: Vec::new(),
            read_timeout: None,
            deadline: None,
            answered_once: false,
        }
    }

    pub fn serve(mut self) {
        let _ = self.client.set_nodelay(true);
        loop {
            match self.one_request() {
                Ok(true) => {}
                Ok(false) | Err(End::Quiet) => break,
                Err(End::Refuse(refusal)) => {
                    self.refuse(&refusal);
                    break;
                }
            }
        }
        let _ = self.client.shutdown(Shutdown::Both);
    }

    /// Reads, passes on and answers one request; whether the connection stays open.
    fn one_request(&mut self) -> Result<bool, End> {
        let head = self.read_head()?;
        self.buf.drain(..head.len);
        let deadline = self.deadline;
        self.body.clear();
        match head.framing {
            Framing::Empty => {}
            Framing::Length(n) => {
                let n = n as usize;
                if head.expects_continue && self.buf.len() < n {
                    self.go_ahead()?;
                }
                while self.buf.len() < n {
                    let got = self.buf.len() as u64;
                    self.fill(deadline, || Refusal::incomplete_body(got, n as u64))?;
                }
                self.body.extend_from_slice(&self.buf[..n]);
                self.buf.drain(..n);
            }
            Framing::Chunked => {
                if head.expects_continue && self.buf.is_empty() {
                    self.go_ahead()?;
                }
                let mut decoder = Decoder::new(self.limits.max_body_bytes);
                loop {
                    let used = decoder.feed(&self.buf, &mut self.body)?;
                    self.buf.drain(..used);
                    if decoder.done() {
                        break;
                    }
                    self.fill(deadline, || {
                        Refusal::bad_chunk("the chunked body ended before its last chunk")
                    })?;
                }
            }
        }
        if head.framing != Framing::Empty {
            let _ = write!(self.out, "Content-Length: {}\r\n", self.body.len());
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&self.body);
        self.pass_on(head.last, head.head_request)?;
        Ok(!head.last)
    }

    /// Reads until a whole head is in `buf`. A connection that closes or idles before a
    /// request begins ends quietly; a stop ends it quietly too.
    fn read_head(&mut self) -> Result<Head, End> {
        self.deadline = None;
        let mut searched = 0;
        loop {
            if !self.buf.is_empty() {
                // The request's time starts with its first byte.
                self.deadline
                    .get_or_insert(Instant::now() + self.limits.body_timeout);
                if head::may_be_complete(&self.buf, searched) {
                    if let Some(head) = head::parse(
                        &self.buf,
                        self.peer,
                        self.limits.max_body_bytes,
                        &mut self.out,
                    )? {
                        return Ok(head);
                    }
                }
                searched = self.buf.len();
            }
            if self.buf.is_empty() && self.shared.stopping() {
                return Err(End::Quiet);
            }
            let between_requests = self.buf.is_empty();
            match self.fill(self.deadline, || {
                Refusal::bad_request_line("the request head ended early")
            }) {
                Ok(()) => {}
                Err(_) if between_requests => return Err(End::Quiet),
                Err(e) => return Err(e),
            }
        }
    }

    /// `100 Continue`, for a client that waits for it before sending its body.
    fn go_ahead(&mut self) -> Result<(), End> {
        self.client
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| End::Quiet)
    }

    /// Reads more from the client into `buf`. `deadline`: when the request must be whole
    /// (a pause is also bounded by the idle timeout). `early`: the answer when the client
    /// ends its side first (a stop cutting the read is answered 503 instead).
    fn fill(&mut self, deadline: Option<Instant>, early: impl Fn() -> Refusal) -> Result<(), End> {
        let mut wait = self.limits.idle_timeout;
        let mut total = false;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Refusal::too_slow(self.limits.body_timeout).into());
            }
            if left < wait {
                wait = left;
                total = true;
            }
        }
        if self.read_timeout != Some(wait) {
            if self.client.set_read_timeout(Some(wait)).is_err() {
                return Err(End::Quiet);
            }
            self.read_timeout = Some(wait);
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_SIZE, 0);
        let read = loop {
            match self.client.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) if self.shared.stopping() => Err(Refusal::shutting_down().into()),
            Ok(0) => Err(early().into()),
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if self.shared.stopping() {
                    Err(Refusal::shutting_down().into())
                } else if total {
                    Err(Refusal::too_slow(self.limits.body_timeout).into())
                } else {
                    Err(Refusal::stalled(self.limits.idle_timeout).into())
                }
            }
            Err(_) => Err(End::Quiet),
        }
    }

    /// Hands the request in `out` to tiny_http and copies its answer to the client. The hop
    /// connection is kept for the client's next request. `last`: the client asked for the
    /// connection to close after it.
    fn pass_on(&mut self, last: bool, head_request: bool) -> Result<(), End> {
        // A kept hop that tiny_http closed in the meantime fails before it answers: the
        // request then goes once more, on a new hop.
        for attempt in 0..2 {
            let reused = self.hop.is_some();
            let hop = match self.hop.as_mut() {
                Some(hop) => hop,
                None => self.hop.insert(self.connect_hop()?),
            };
            // One write: tiny_http's connection thread wakes once for the whole request.
            let copied = match hop.write_all(&self.out) {
                Ok(()) => answer::copy(hop, &mut self.client, &mut self.answer, head_request, last),
                Err(_) => Err(Failed::Hop { started: false }),
            };
            match copied {
                Ok(after) => {
                    if !self.answered_once {
                        self.answered_once = true;
                        self.shared.activity().record_answered();
                    }
                    if last || after == After::Closed {
                        self.hop = None;
                    }
                    return Ok(());
                }
                Err(Failed::Hop { started: false }) if reused && attempt == 0 => {
                    self.hop = None;
                }
                Err(Failed::Hop { started: false }) => {
                    self.hop = None;
                    return Err(Refusal::handlers_unavailable().into());
                }
                Err(_) => {
                    self.hop = None;
                    return Err(End::Quiet);
                }
            }
        }
        Err(Refusal::handlers_unavailable().into())
    }

    fn connect_hop(&self) -> Result<UnixStream, End> {
        UnixStream::connect(self.shared.hop_path()).map_err(|e| {
            log::warn!("http: cannot reach the request handlers: {e}");
            self.shared.activity().report_trouble();
            End::Refuse(Refusal::handlers_unavailable())
        })
    }

    /// The refusal as the last answer on this connection.
    fn refuse(&mut self, refusal: &Refusal) {
        let _ = self.client.set_write_timeout(Some(LINGER));
        if self.client.write_all(&refusal.http()).is_err() {
            return;
        }
        let _ = self.client.shutdown(Shutdown::Write);
        // Take what the client still sends for a moment, so the close does not reset the
        // connection before the answer is read.
        let until = Instant::now() + LINGER;
        let mut taken = 0;
        let mut sink = [0u8; READ_SIZE];
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
