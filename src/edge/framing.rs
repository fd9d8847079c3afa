//! How a request's body is delimited, decided once from its headers: a plain
//! `Content-Length`, or `Transfer-Encoding: chunked`, or nothing. Everything else is
//! ambiguous (two lengths, a length beside a coding, a coding other than chunked, a coding
//! on HTTP/1.0) and refused: two parsers that could read it two ways are how requests are
//! smuggled.

use super::refusal::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: neither header given.
    Empty,
    /// `Content-Length` (zero included: a declared empty body).
    Length(u64),
    Chunked,
}

/// A `Content-Length` value: decimal digits only (no sign, no list, no spaces inside), that
/// fit in 64 bits.
pub fn content_length(value: &str) -> Result<u64, Refusal> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::bad_content_length(value));
    }
    value
        .parse()
        .map_err(|_| Refusal::bad_content_length(value))
}

/// What the framing headers of one request said, gathered while its headers are read.
#[derive(Debug, Default)]
pub struct FramingHeaders<'h> {
    content_length: Option<&'h str>,
    transfer_encoding: Option<&'h str>,
    repeated: Option<&'static str>,
}

impl<'h> FramingHeaders<'h> {
    /// Takes the header if it is a framing header; whether it was one.
    pub fn take(&mut self, name: &str, value: &'h str) -> bool {
        let slot = if name.eq_ignore_ascii_case("content-length") {
            (&mut self.content_length, "Content-Length")
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            (&mut self.transfer_encoding, "Transfer-Encoding")
        } else {
            return false;
        };
        if slot.0.replace(value).is_some() {
            self.repeated.get_or_insert(slot.1);
        }
        true
    }

    /// The framing, or why it is refused. `http10`: the request is HTTP/1.0, which has no
    /// transfer codings. `max_body`: a declared length above it is refused unread.
    pub fn decide(&self, http10: bool, max_body: u64) -> Result<Framing, Refusal> {
        if let Some(name) = self.repeated {
            return Err(Refusal::ambiguous_length(&format!(
                "{name} is given more than once"
            )));
        }
        match (self.content_length, self.transfer_encoding) {
            (Some(_), Some(_)) => Err(Refusal::ambiguous_length(
                "Content-Length and Transfer-Encoding are both given",
            )),
            (None, Some(_)) if http10 => Err(Refusal::bad_transfer_encoding(
                "Transfer-Encoding on an HTTP/1.0 request",
            )),
            (None, Some(coding)) => {
                if coding
                    .trim_matches([' ', '\t'])
                    .eq_ignore_ascii_case("chunked")
                {
                    Ok(Framing::Chunked)
                } else {
                    Err(Refusal::bad_transfer_encoding(&format!(
                        "Transfer-Encoding {coding:?}"
                    )))
                }
            }
            (Some(value), None) => {
                let length = content_length(value)?;
                if length > max_body {
                    return Err(Refusal::too_large(max_body));
                }
                Ok(Framing::Length(length))
            }
            (None, None) => Ok(Framing::Empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(headers: &[(&str, &str)], http10: bool) -> Result<Framing, u16> {
        let mut f = FramingHeaders::default();
        for (n, v) in headers {
            assert!(f.take(n, v));
        }
        f.decide(http10, 1000).map_err(|r| r.status)
    }

    #[test]
    fn plain_lengths_and_chunked_pass() {
        assert_eq!(decide(&[], false), Ok(Framing::Empty));
        assert_eq!(
            decide(&[("content-length", "12")], false),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            decide(&[("Content-Length", "0")], true),
            Ok(Framing::Length(0))
        );
        assert_eq!(
            decide(&[("transfer-encoding", "Chunked")], false),
            Ok(Framing::Chunked)
        );
    }

    #[test]
    fn anything_ambiguous_is_refused() {
        for bad in [
            "-1",
            "+5",
            "5x",
            "1,1",
            "",
            "1 2",
            "99999999999999999999999",
        ] {
            assert_eq!(
                decide(&[("Content-Length", bad)], false),
                Err(400),
                "{bad:?}"
            );
        }
        assert_eq!(
            decide(&[("Content-Length", "5"), ("content-length", "5")], false),
            Err(400)
        );
        assert_eq!(
            decide(
                &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                false
            ),
            Err(400)
        );
        assert_eq!(
            decide(&[("Transfer-Encoding", "gzip, chunked")], false),
            Err(400)
        );
        assert_eq!(
            decide(&[("Transfer-Encoding", "identity")], false),
            Err(400)
        );
        assert_eq!(
            decide(
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked")
                ],
                false
            ),
            Err(400)
        );
        assert_eq!(decide(&[("Transfer-Encoding", "chunked")], true), Err(400));
        assert_eq!(decide(&[("Content-Length", "1001")], false), Err(413));
    }
}
