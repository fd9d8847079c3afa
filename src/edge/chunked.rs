//! Decoding a chunked body as it arrives, with hyper's caps: chunk extensions and trailers
//! together at most [`MAX_EXTRAS`] per body, and the framing (size lines, line ends,
//! trailers) at most [`FRAMING_ALLOWANCE`] more than the body itself, so no sender makes the
//! gate read or keep much more than `server.max_body_bytes`. Extensions and trailers are
//! dropped; tiny_http receives the decoded body with a `Content-Length`.

use super::refusal::Refusal;

/// Chunk extensions and trailer lines, together, per body.
pub const MAX_EXTRAS: usize = 16 * 1024;
/// Framing bytes allowed beyond the body's own length.
pub const FRAMING_ALLOWANCE: u64 = 16 * 1024;
/// Hex digits in a chunk size: more would overflow 64 bits.
const MAX_SIZE_DIGITS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    max_body: u64,
    body_len: u64,
    framing: u64,
    extras: usize,
}

impl Decoder {
    pub fn new(max_body: u64) -> Decoder {
        Decoder {
            state: State::Size,
            max_body,
            body_len: 0,
            framing: 0,
            extras: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input` into `body`; how many bytes of `input` it used. It
    /// uses nothing of an incomplete line: call again with more.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, Refusal> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Done => return Ok(at),
                State::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&rest[..n]);
                    at += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(Refusal::bad_chunk("a chunk is longer than its size says"));
                    }
                    at += 2;
                    self.count_framing(2)?;
                    self.state = State::Size;
                }
                State::Size | State::Trailer => {
                    let Some(line) = line(rest)? else {
                        if rest.len() > MAX_EXTRAS + MAX_SIZE_DIGITS + 2 {
                            return Err(Refusal::bad_chunk(
                                "a chunk size or trailer line is too long",
                            ));
                        }
                        return Ok(at);
                    };
                    at += line.len() + 2;
                    self.count_framing(line.len() as u64 + 2)?;
                    if self.state == State::Size {
                        self.size_line(line)?;
                    } else {
                        self.trailer_line(line)?;
                    }
                }
            }
        }
    }

    fn size_line(&mut self, line: &[u8]) -> Result<(), Refusal> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(Refusal::bad_chunk(
                "a chunk size line has no hexadecimal size",
            ));
        }
        if digits > MAX_SIZE_DIGITS {
            return Err(Refusal::bad_chunk("a chunk size does not fit in 64 bits"));
        }
        let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).unwrap_or(""), 16)
            .map_err(|_| Refusal::bad_chunk("a chunk size does not fit in 64 bits"))?;
        let after = &line[digits..];
        let ext = after
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .map_or(&after[after.len()..], |i| &after[i..]);
        if !ext.is_empty() {
            if ext[0] != b';' {
                return Err(Refusal::bad_chunk(
                    "a chunk size is followed by something other than an extension",
                ));
            }
            self.count_extras(ext.len())?;
        }
        if size == 0 {
            self.state = State::Trailer;
            return Ok(());
        }
        if size > self.max_body.saturating_sub(self.body_len) {
            return Err(Refusal::too_large(self.max_body));
        }
        self.body_len += size;
        self.state = State::Data(size);
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), Refusal> {
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        if matches!(line[0], b' ' | b'\t' | b':') || !line.contains(&b':') {
            return Err(Refusal::bad_chunk("a trailer line is not a header"));
        }
        self.count_extras(line.len())
    }

    fn count_extras(&mut self, n: usize) -> Result<(), Refusal> {
        self.extras += n;
        if self.extras > MAX_EXTRAS {
            return Err(Refusal::bad_chunk(&format!(
                "chunk extensions and trailers are larger than {MAX_EXTRAS} bytes"
            )));
        }
        Ok(())
    }

    fn count_framing(&mut self, n: u64) -> Result<(), Refusal> {
        self.framing += n;
        if self.framing > FRAMING_ALLOWANCE + self.body_len {
            return Err(Refusal::bad_chunk(
                "the chunked framing is much larger than the body it carries",
            ));
        }
        Ok(())
    }
}

/// The line at the start of `input` without its CRLF, once it is complete; a LF without a
/// CR, or a CR, NUL or other control byte inside, is refused.
fn line(input: &[u8]) -> Result<Option<&[u8]>, Refusal> {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        return check_line(input).map(|_| None);
    };
    if lf == 0 || input[lf - 1] != b'\r' {
        return Err(Refusal::bad_chunk("a chunk line ends with a bare LF"));
    }
    let line = &input[..lf - 1];
    check_line(line)?;
    Ok(Some(line))
}

fn check_line(bytes: &[u8]) -> Result<(), Refusal> {
    // A CR may end the bytes seen so far (its LF not here yet).
    let inner = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if inner
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f || !b.is_ascii())
    {
        return Err(Refusal::bad_chunk(
            "a chunk line contains a control byte or one that is not ASCII",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> Result<(Vec<u8>, usize, bool), Refusal> {
        let mut d = Decoder::new(1 << 20);
        let mut body = Vec::new();
        let used = d.feed(input, &mut body)?;
        Ok((body, used, d.done()))
    }

    #[test]
    fn decodes_in_pieces_with_extensions_and_trailers() {
        let input = b"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(
            decode(input).unwrap(),
            (b"hello world".to_vec(), input.len() - 4, true)
        );
        let mut d = Decoder::new(100);
        let mut body = Vec::new();
        let mut at = 0;
        for end in 1..=input.len() {
            at += d.feed(&input[at..end], &mut body).unwrap();
        }
        assert!(d.done());
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn refuses_overflow_bare_lf_and_floods() {
        assert!(decode(b"fffffffffffffffff\r\n").is_err());
        assert!(decode(b"5\nhello\r\n").is_err());
        assert!(decode(b"5\r\nhelloX\r\n").is_err());
        assert!(decode(b"x\r\n").is_err());
        assert!(decode(b"5 junk\r\n").is_err());
        assert_eq!(decode(b"200000\r\n").unwrap_err().status, 413);
        let ext = format!("1;{}\r\na\r\n", "e".repeat(MAX_EXTRAS + 1));
        assert!(decode(ext.as_bytes()).is_err());
        let mut many = Vec::new();
        for _ in 0..2000 {
            many.extend_from_slice(b"1;xxxxxxxx\r\na\r\n");
        }
        assert!(decode(&many).is_err(), "extensions add up");
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..2000 {
            trailers.extend_from_slice(format!("T{i}: vvvvvvvv\r\n").as_bytes());
        }
        assert!(decode(&trailers).is_err(), "trailers add up");
        let mut tiny = Vec::new();
        for _ in 0..20_000 {
            tiny.extend_from_slice(b"1\r\na\r\n");
        }
        assert!(decode(&tiny).is_err(), "framing far larger than the body");
    }
}
