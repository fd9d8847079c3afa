//! A corpus of hostile requests, sent over raw sockets, and the checks every one must pass
//! wherever hookvault meets clients (gate mode, direct mode, behind nginx or Caddy): the
//! process lives, its memory grows by less than [`MAX_RSS_GROWTH_KIB`], nothing ambiguous is
//! stored, no second answer appears, and a normal webhook works afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use super::Http;

pub const INGEST: &str = "/api/v2/webhooks/orders";
pub const MAX_RSS_GROWTH_KIB: u64 = 32 * 1024;

/// Where the corpus is sent, and so which answers are right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// hookvault's gate on its own port.
    Gate,
    /// tiny_http on the port directly: only the cases a proxy does not have to absorb.
    Direct,
    /// A reverse proxy in front (nginx, Caddy): it may refuse with its own status, or close,
    /// or pass on a request it has made unambiguous.
    Proxy,
}

/// What a case must get.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// One answer with one of these statuses (or, behind a proxy, any 4xx or a close), and
    /// nothing stored.
    Refused(&'static [u16]),
    /// Answers with these statuses in this order (a request that is fine, then the one
    /// pipelined after it, which must not have been swallowed).
    Answers(&'static [u16]),
}

pub struct Case {
    pub name: &'static str,
    pub request: Vec<u8>,
    /// Where it applies: direct mode leaves some cases to the proxy (docs/deploy.md).
    pub direct: bool,
    pub expect: Expect,
    /// The client's write side closes after the request (an early end of the body).
    pub half_close: bool,
}

fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n{body}").into_bytes()
}

const STATS_REQUEST: &str =
    "GET /api/v2/webhooks/queue/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Every case of the corpus.
pub fn corpus() -> Vec<Case> {
    let case = |name, request, direct, expect| Case {
        name,
        request,
        direct,
        expect,
        half_close: false,
    };
    const BAD: Expect = Expect::Refused(&[400]);
    let smuggled = format!("0\r\n\r\n{STATS_REQUEST}");
    let mut cases = vec![
        case(
            "leading space before a huge Content-Length",
            post("Content-Length: 5\r\n Content-Length: 99999999999\r\n", "hello"),
            false,
            BAD,
        ),
        case(
            "leading tab before a huge Content-Length",
            post("Content-Length: 5\r\n\tContent-Length: 99999999999\r\n", "hello"),
            false,
            BAD,
        ),
        case(
            "Transfer-Encoding hidden by a leading space next to Content-Length",
            post(
                &format!("Content-Length: {}\r\n Transfer-Encoding: chunked\r\n", smuggled.len()),
                &smuggled,
            ),
            false,
            BAD,
        ),
        case("obs-fold", post("X-A: 1\r\n folded\r\nContent-Length: 2\r\n", "{}"), false, BAD),
        case("space before the colon", post("Content-Length : 2\r\n", "{}"), false, BAD),
        case("NUL in a value", post("X-A: a\0b\r\nContent-Length: 2\r\n", "{}"), false, BAD),
        case("bare LF line ends", format!("POST {INGEST} HTTP/1.1\nHost: localhost\nContent-Length: 2\n\n{{}}").into_bytes(), false, BAD),
        case("two equal Content-Length", post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"), false, BAD),
        case(
            "Content-Length with Transfer-Encoding",
            post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
            false,
            BAD,
        ),
        case("a coding other than chunked", post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), false, BAD),
        case(
            "Transfer-Encoding on HTTP/1.0",
            format!("POST {INGEST} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n").into_bytes(),
            false,
            BAD,
        ),
        case("a chunk size that overflows", post("Transfer-Encoding: chunked\r\n", "10000000000000002\r\n{}\r\n0\r\n\r\n"), false, Expect::Refused(&[400, 413])),
        case(
            "a chunk extension flood",
            post("Transfer-Encoding: chunked\r\n", &format!("2;{}\r\n{{}}\r\n0\r\n\r\n", "e".repeat(1 << 20))),
            false,
            BAD,
        ),
        case(
            "many chunk extensions",
            post("Transfer-Encoding: chunked\r\n", &format!("{}0\r\n\r\n", "1;aaaaaaaaaaaaaaaa\r\nx\r\n".repeat(4096))),
            false,
            BAD,
        ),
        case(
            "a trailer flood",
            post("Transfer-Encoding: chunked\r\n", &format!("2\r\n{{}}\r\n0\r\n{}\r\n", "X-Trailer: vvvvvvvvvvvvvvvvvvvvvvvv\r\n".repeat(40_000))),
            false,
            BAD,
        ),
        case(
            "an absolute-form target",
            format!("POST http://localhost{INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes(),
            true,
            Expect::Refused(&[400, 404]),
        ),
        case(
            "a 1 MiB request line",
            format!("GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(1 << 20)).into_bytes(),
            false,
            Expect::Refused(&[431, 414, 400]),
        ),
        case(
            "a header flood",
            post(&"X-Flood: 1\r\n".repeat(5000), ""),
            false,
            Expect::Refused(&[431, 400]),
        ),
        case("a header with a byte that is not ASCII", post("X-A: caf\u{e9}\r\nContent-Length: 2\r\n", "{}"), false, BAD),
        case(
            "a request pipelined after a refusal",
            [post("Content-Length: 5x\r\n", ""), STATS_REQUEST.as_bytes().to_vec()].concat(),
            false,
            BAD,
        ),
        case(
            "Expect: 100-continue with a body too large",
            post("Content-Length: 99999999\r\nExpect: 100-continue\r\n", ""),
            false,
            Expect::Refused(&[413]),
        ),
        case("a Content-Length that is not a number", post("Content-Length: -1\r\n", ""), true, BAD),
        case("an empty body", post("Content-Length: 0\r\n", ""), true, BAD),
        case(
            "Connection: Upgrade on ingest, a request pipelined after it",
            [post("Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n", "{}"), STATS_REQUEST.as_bytes().to_vec()].concat(),
            false,
            Expect::Answers(&[200, 200]),
        ),
        case(
            "Connection: Upgrade on ingest (direct)",
            post("Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n", "{}"),
            true,
            BAD,
        ),
    ];
    cases.push(Case {
        half_close: true,
        ..case(
            "a body shorter than its length",
            post("Content-Length: 2000\r\n", "{\"a\":1}"),
            true,
            BAD,
        )
    });
    cases
}

/// A connection a case is sent over: plain TCP, or TLS to a proxy.
pub trait Stream: Read + Write {
    /// Ends the sending side (an early end of the body).
    fn close_write(&mut self);
}

impl Stream for TcpStream {
    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Opens a new connection to the port under test, its timeouts set.
pub type Connect<'a> = &'a dyn Fn() -> std::io::Result<Box<dyn Stream>>;

/// A plain TCP connection to `target` whose reads give up after `limit`.
pub fn tcp(target: SocketAddr, limit: Duration) -> std::io::Result<Box<dyn Stream>> {
    let conn = TcpStream::connect(target)?;
    conn.set_read_timeout(Some(limit))?;
    conn.set_write_timeout(Some(limit))?;
    Ok(Box::new(conn))
}

/// The statuses of every answer on one connection, read until it closes or times out.
pub fn exchange(connect: Connect, request: &[u8], half_close: bool) -> Vec<u16> {
    let Ok(mut conn) = connect() else {
        return Vec::new();
    };
    // A server that refuses early may close while a large request is still being written.
    let _ = conn.write_all(request).and_then(|()| conn.flush());
    if half_close {
        conn.close_write();
    }
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    statuses(&bytes)
}

/// The status of every HTTP answer in `bytes` (a `100 Continue` included).
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    let mut found = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("HTTP/1.") {
        let line = &rest[at..];
        if let Some(status) = line.get(9..12).and_then(|s| s.parse().ok()) {
            found.push(status);
        }
        rest = &rest[at + 8..];
    }
    found
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Where the corpus goes and how its effects are read.
pub struct Target<'a> {
    pub edge: Edge,
    pub connect: Connect<'a>,
    /// hookvault's process.
    pub pid: u32,
    /// hookvault's admin API, on its own port (the stats' `total_received`).
    pub admin: &'a Http,
    /// Sends a normal webhook through the port under test; its status.
    pub ingest: &'a dyn Fn() -> u16,
}

/// Runs every case that applies to the target's edge. Returns the failures, one line each.
pub fn run_corpus(target: &Target) -> Vec<String> {
    let mut failures = Vec::new();
    let edge = target.edge;
    let received = || target.admin.stats()["total_received"].as_u64().unwrap();
    for case in corpus() {
        if edge == Edge::Direct && !case.direct {
            continue;
        }
        if edge != Edge::Direct && case.name.ends_with("(direct)") {
            continue;
        }
        let rss_before = rss_kib(target.pid);
        let stored_before = received();
        let got = exchange(target.connect, &case.request, case.half_close);
        let stored = received() - stored_before;
        let mut fail = |why: String| failures.push(format!("{}: {why}", case.name));
        let answers: Vec<u16> = got.iter().copied().filter(|s| *s != 100).collect();
        match (case.expect, edge) {
            (Expect::Refused(allowed), Edge::Gate | Edge::Direct) => {
                if !(answers.len() == 1 && allowed.contains(&answers[0])) {
                    fail(format!("answers {got:?}, expected one of {allowed:?}"));
                }
                if stored != 0 {
                    fail(format!("{stored} messages stored"));
                }
            }
            // A proxy refuses (its own status, or a close), or absorbs the request into one
            // it forwards unambiguously: one answer at most, and a message stored only
            // with a 2xx.
            (Expect::Refused(_), Edge::Proxy) => {
                let fine = match answers[..] {
                    [] => stored == 0,
                    [s] if (200..300).contains(&s) => stored == 1,
                    [s] => s >= 400 && stored == 0,
                    _ => false,
                };
                if !fine {
                    fail(format!("answers {got:?} with {stored} stored"));
                }
            }
            (Expect::Answers(want), Edge::Gate | Edge::Direct) => {
                if answers != want {
                    fail(format!("answers {got:?}, expected {want:?}"));
                }
            }
            (Expect::Answers(want), Edge::Proxy) => {
                if answers.len() != want.len() {
                    fail(format!("answers {got:?}, expected {} of them", want.len()));
                }
            }
        }
        if std::fs::metadata(format!("/proc/{}", target.pid)).is_err() {
            fail("the process is gone".into());
            return failures;
        }
        let grown = rss_kib(target.pid).saturating_sub(rss_before);
        if grown > MAX_RSS_GROWTH_KIB {
            fail(format!("RSS grew by {grown} KiB"));
        }
        let normal = (target.ingest)();
        if normal != 200 {
            fail(format!("a normal webhook afterwards got {normal}"));
        }
    }
    failures
}
