//! Copying one of tiny_http's answers from the hop to the client: its head (with
//! `Connection: close` added when the client's connection ends after it) and exactly its body,
//! read by its framing, so the hop connection can carry the client's next request.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use super::chunked::Decoder;

/// The longest answer head tiny_http writes is far below this.
const MAX_ANSWER_HEAD: usize = 64 * 1024;
const READ_SIZE: usize = 16 * 1024;

/// Whether the hop may carry another request.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Reusable,
    Closed,
}

/// Why an answer could not be copied.
#[derive(Debug)]
pub enum Failed {
    /// The hop failed; `started`: part of the answer already went to the client.
    Hop { started: bool },
    /// The client could not take the answer (gone, or not reading within the send timeout).
    Client,
}

enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Copies one answer. `buf` is scratch space kept by the connection; `head_request`: the
/// request was `HEAD` (an answer without a body whatever its headers say).
pub fn copy(
    hop: &mut UnixStream,
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_request: bool,
    last: bool,
) -> Result<After, Failed> {
    buf.clear();
    let (head_len, body) = loop {
        if fill(hop, buf)? == 0 {
            return Err(Failed::Hop { started: false });
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut headers);
        match answer.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = answer.code.unwrap_or(500);
                break (len, framing(&answer, status, head_request));
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_ANSWER_HEAD => {}
            _ => return Err(Failed::Hop { started: false }),
        }
    };
    let head = &buf[..head_len];
    let sent = if last {
        // Say so before closing: the status line, `Connection: close`, the other headers.
        let line = head
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        client
            .write_all(&head[..line])
            .and_then(|()| client.write_all(b"Connection: close\r\n"))
            .and_then(|()| client.write_all(&head[line..]))
    } else {
        client.write_all(head)
    };
    sent.map_err(|_| Failed::Client)?;
    buf.drain(..head_len);
    let started = Failed::Hop { started: true };
    match body {
        Body::None => Ok(if buf.is_empty() {
            After::Reusable
        } else {
            After::Closed
        }),
        Body::Length(mut left) => loop {
            let n = (buf.len() as u64).min(left) as usize;
            client.write_all(&buf[..n]).map_err(|_| Failed::Client)?;
            left -= n as u64;
            let extra = buf.len() > n;
            buf.clear();
            if left == 0 {
                return Ok(if extra {
                    After::Closed
                } else {
                    After::Reusable
                });
            }
            if fill(hop, buf)? == 0 {
                return Err(started);
            }
        },
        Body::Chunked => {
            let mut decoder = Decoder::new(u64::MAX);
            let mut scratch = Vec::new();
            loop {
                let used = decoder
                    .feed(buf, &mut scratch)
                    .map_err(|_| Failed::Hop { started: true })?;
                scratch.clear();
                client.write_all(&buf[..used]).map_err(|_| Failed::Client)?;
                let extra = buf.len() > used;
                buf.drain(..used);
                if decoder.done() {
                    return Ok(if extra {
                        After::Closed
                    } else {
                        After::Reusable
                    });
                }
                if fill(hop, buf)? == 0 {
                    return Err(started);
                }
            }
        }
        Body::UntilClose => loop {
            client.write_all(buf).map_err(|_| Failed::Client)?;
            buf.clear();
            if fill(hop, buf)? == 0 {
                return Ok(After::Closed);
            }
        },
    }
}

fn framing(answer: &httparse::Response, status: u16, head_request: bool) -> Body {
    if head_request || status / 100 == 1 || status == 204 || status == 304 {
        return Body::None;
    }
    let header = |name: &str| {
        answer
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Body::Chunked;
    }
    match header("content-length").and_then(|v| v.trim().parse().ok()) {
        Some(n) => Body::Length(n),
        None => Body::UntilClose,
    }
}

/// Reads more of the answer into `buf`; 0 at its end.
fn fill(hop: &mut UnixStream, buf: &mut Vec<u8>) -> Result<usize, Failed> {
    let len = buf.len();
    buf.resize(len + READ_SIZE, 0);
    let read = loop {
        match hop.read(&mut buf[len..]) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    buf.truncate(len + *read.as_ref().unwrap_or(&0));
    read.map_err(|_| Failed::Hop { started: len > 0 })
}
