//! Reading a request head with `httparse` and writing the head tiny_http receives in its
//! place. No line the client sent is passed on as it came: tiny_http reads only the request
//! line and the headers as parsed here, the client's address in [`CLIENT_HEADER`],
//! `Connection: close` when the client's connection ends with this request, and the
//! framing the gate chose (written by the connection once the body is read). Hop-by-hop
//! headers (`Connection`, `Upgrade`, `Keep-Alive`, `TE`, `Trailer`, `Expect`) are the gate's
//! to answer, so tiny_http never switches protocols or waits for a `100 Continue`.

use std::io::Write;
use std::net::SocketAddr;

use super::framing::{Framing, FramingHeaders};
use super::refusal::Refusal;

/// The longest request head (request line and headers); webhook heads are a few hundred
/// bytes to a few KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Where the gate tells tiny_http which client a request came from. A client's own header
/// of that name is dropped, and only the gate can reach tiny_http in gate mode.
pub const CLIENT_HEADER: &str = "X-Hookvault-Client";

/// Headers that concern one hop, not the request: never passed on.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

/// What the connection needs to know of a parsed head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its length in the input, the blank line included.
    pub len: usize,
    pub framing: Framing,
    /// The client wants the connection closed after this answer (HTTP/1.0 always).
    pub last: bool,
    /// `Expect: 100-continue`: the client waits for a go-ahead before its body.
    pub expects_continue: bool,
    /// A `HEAD` request: its answer has no body.
    pub head_request: bool,
}

/// Whether `buf` may hold a whole head: it has a blank line, or is too long to wait for one.
/// (Parsing only then keeps a head sent byte by byte from being parsed once per byte.)
pub fn may_be_complete(buf: &[u8], searched_from: usize) -> bool {
    let from = searched_from.saturating_sub(3);
    buf.len() > MAX_HEAD_BYTES || buf[from..].windows(2).any(|w| w == b"\n\n" || w == b"\n\r")
}

/// Parses the head at the start of `buf`. `Ok(None)`: not complete yet. On success the
/// head for tiny_http, without its framing and the blank line, is in `out`.
pub fn parse(
    buf: &[u8],
    client: SocketAddr,
    max_body: u64,
    out: &mut Vec<u8>,
) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::header_too_large(MAX_HEAD_BYTES))
        }
        Err(e) => {
            return Err(Refusal::bad_header(&format!(
                "the request head is malformed ({e}; a header line may not start with a space or tab, have a space before its colon, or carry control bytes)"
            )))
        }
    };
    if let Some(at) = bare_lf(&buf[..len]) {
        return Err(Refusal::bad_header(&format!(
            "line {at} of the request head ends with a bare LF instead of CRLF"
        )));
    }
    let method = request.method.unwrap_or("");
    let target = request.path.unwrap_or("");
    let http10 = request.version == Some(0);
    if !(target.starts_with('/') || (target == "*" && method == "OPTIONS")) {
        return Err(Refusal::bad_request_line(&format!(
            "the request target {:?} is not a path starting with /",
            target.chars().take(100).collect::<String>()
        )));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::bad_request_line(
            "the request target contains a byte that is not printable ASCII",
        ));
    }
    out.clear();
    let _ = write!(out, "{method} {target} HTTP/1.{}\r\n", u8::from(!http10));
    let mut framing = FramingHeaders::default();
    let (mut close, mut expects_continue, mut hosts) = (false, false, 0);
    for header in request.headers.iter() {
        let name = header.name;
        let Ok(value) = std::str::from_utf8(header.value) else {
            return Err(not_ascii(name));
        };
        if !value.is_ascii() {
            return Err(not_ascii(name));
        }
        if framing.take(name, value) {
            continue;
        }
        if name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("close"));
            continue;
        }
        if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Refusal::expectation_failed(value));
            }
            expects_continue = true;
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 {
                return Err(Refusal::bad_header("Host is given more than once"));
            }
        }
        if name.eq_ignore_ascii_case(CLIENT_HEADER)
            || HOP_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let framing = framing.decide(http10, max_body)?;
    let _ = write!(out, "{CLIENT_HEADER}: {client}\r\n");
    if close && !http10 {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    Ok(Some(Head {
        len,
        framing,
        last: close || http10,
        expects_continue: expects_continue && framing != Framing::Empty,
        head_request: method == "HEAD",
    }))
}

fn not_ascii(name: &str) -> Refusal {
    Refusal::bad_header(&format!(
        "the header {name} contains a byte that is not ASCII"
    ))
}

/// The 1-based line number of the first LF not preceded by CR.
fn bare_lf(head: &[u8]) -> Option<usize> {
    let mut line = 1;
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            if i == 0 || head[i - 1] != b'\r' {
                return Some(line);
            }
            line += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> SocketAddr {
        "192.0.2.9:4000".parse().unwrap()
    }

    fn parse_str(raw: &str) -> Result<Option<(Head, String)>, Refusal> {
        let mut out = Vec::new();
        parse(raw.as_bytes(), client(), 1000, &mut out)
            .map(|h| h.map(|h| (h, String::from_utf8(out).unwrap())))
    }

    fn status(raw: &str) -> u16 {
        match parse_str(raw) {
            Err(r) => r.status,
            Ok(_) => 200,
        }
    }

    #[test]
    fn writes_its_own_head() {
        let raw = "POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nX-Hookvault-Client: 127.0.0.1:1\r\nX-Sig: a b\r\n\r\nhello";
        let (head, out) = parse_str(raw).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(head.len, raw.len() - 5);
        assert!(!head.last);
        assert_eq!(
            out,
            "POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: x\r\nX-Sig: a b\r\nX-Hookvault-Client: 192.0.2.9:4000\r\n"
        );
        assert!(parse_str("GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        let (head, out) = parse_str("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(head.last);
        assert!(out.starts_with("GET / HTTP/1.0\r\n") && !out.contains("Connection"));
    }

    #[test]
    fn refuses_what_two_parsers_could_read_two_ways() {
        let post = |h: &str| format!("POST /x HTTP/1.1\r\nHost: x\r\n{h}\r\n\r\n");
        for bad in [
            post(" Content-Length: 99999999999"),
            post("\tContent-Length: 99999999999"),
            post("X-A: 1\r\n Transfer-Encoding: chunked"),
            post("X-A: 1\r\n\tfolded"),
            post("Content-Length : 5"),
            post("X-A: a\0b"),
            post("Content-Length: 5\r\nContent-Length: 5"),
            post("Content-Length: 5\r\nTransfer-Encoding: chunked"),
            post("Transfer-Encoding: gzip"),
            post("Host: y"),
            "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            "GET / HTTP/1.1\nHost: x\n\n".into(),
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "GET / HTTP/2.0\r\n\r\n".into(),
        ] {
            assert_eq!(status(&bad), 400, "{bad:?}");
        }
        assert_eq!(status(&post("X-A: caf\u{e9}")), 400);
        assert_eq!(status(&post("Expect: something")), 417);
        assert_eq!(status(&post("Content-Length: 1001")), 413);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(status(&long), 431);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
    }
}
