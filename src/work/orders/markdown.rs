//! Discord markdown removal for labels and values.
//!
//! Checkout bots decorate their webhooks for humans: spoilers hide emails and
//! order numbers (`||#1001-88231||`), labels are bold, some bots wrap order
//! numbers in inline code or code blocks, and product names are often masked
//! links. None of that decoration belongs in a stored order, so every label and
//! value goes through [`clean`] before it is matched or kept.
//!
//! The cleaner is deliberately conservative about characters that also occur
//! in real data: `_` is only treated as markup at word boundaries (so
//! `first_last@example.com` survives), long `*` runs are kept (masked cards such
//! as `****1234`), and `#` is never touched (order numbers like `#1001-88231`).
//!
//! All scanning is done on bytes but only ever splits at ASCII marker bytes,
//! which can never occur inside a multibyte UTF-8 sequence, so slicing is
//! always on a char boundary.

use std::borrow::Cow;

/// Bytes that can start Discord markup we strip. A value with none of these
/// (the common case: `TEST-7`, `$99.99`, `Shopify US`) is returned borrowed.
#[inline]
fn is_markup_byte(b: u8) -> bool {
    matches!(b, b'*' | b'_' | b'|' | b'~' | b'`' | b'[' | b'\\')
}

/// Wrappers stripped when they enclose the whole value, longest first so that
/// `**x**` is not mistaken for `*` + `*x*` + `*`.
const WRAPPERS: [&str; 6] = ["||", "**", "__", "~~", "*", "_"];

/// Removes Discord markdown from `s` and trims surrounding whitespace
/// (including the `\r` of CRLF bodies).
///
/// * `||spoiler||`, `**bold**`, `__underline__`, `*italic*`, `_italic_`,
///   `~~strike~~` lose their markers;
/// * `` `code` `` and ```` ```block``` ```` become their literal content (a
///   language tag on the first line of a block is dropped);
/// * `[text](url)` becomes `text`;
/// * `\*` style escapes become the escaped character.
pub fn clean(s: &str) -> Cow<'_, str> {
    let mut t = s.trim();
    if !t.bytes().any(is_markup_byte) {
        return Cow::Borrowed(t);
    }

    // Peel wrappers that enclose the whole value, e.g. `||**X**||`.
    'peel: loop {
        for w in WRAPPERS {
            if t.len() > 2 * w.len() && t.starts_with(w) && t.ends_with(w) {
                // A single `*`/`_` wrapper must not be half of a double one.
                let inner = &t[w.len()..t.len() - w.len()];
                if w.len() == 1 && (inner.starts_with(w) || inner.ends_with(w)) {
                    continue;
                }
                t = inner.trim();
                continue 'peel;
            }
        }
        break;
    }

    // A value that is entirely code is literal: no further markup inside it.
    if let Some(code) = whole_code(t) {
        return Cow::Borrowed(code);
    }
    if !t.bytes().any(is_markup_byte) {
        return Cow::Borrowed(t);
    }
    Cow::Owned(strip_inline(t))
}

/// If `t` is exactly one code block or one inline code span, returns its
/// literal content.
fn whole_code(t: &str) -> Option<&str> {
    if t.len() >= 6 && t.starts_with("```") && t.ends_with("```") {
        let inner = &t[3..t.len() - 3];
        if inner.contains("```") {
            return None;
        }
        // ```lang\ncontent``` : the first line is a language tag when it is a
        // single identifier-like word followed by more content.
        if let Some(nl) = inner.find('\n') {
            let first = inner[..nl].trim();
            let rest = inner[nl + 1..].trim();
            if !rest.is_empty()
                && !first.is_empty()
                && first
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_'))
            {
                return Some(rest);
            }
        }
        return Some(inner.trim());
    }
    if t.len() >= 3 && t.starts_with('`') && t.ends_with('`') {
        let inner = &t[1..t.len() - 1];
        if !inner.contains('`') {
            return Some(inner.trim());
        }
    }
    None
}

/// Is the byte at a word boundary position (absent or ASCII whitespace or
/// ASCII punctuation)? Non-ASCII neighbours count as word characters.
#[inline]
fn boundary(b: Option<u8>) -> bool {
    match b {
        None => true,
        Some(b) => b.is_ascii_whitespace() || (b.is_ascii_punctuation() && b != b'_'),
    }
}

/// Removes markup occurring anywhere inside `t`.
fn strip_inline(t: &str) -> String {
    let bytes = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    // Start of the pending run of ordinary text, copied lazily in one slice.
    let mut copy_from = 0;
    let mut links = LinkFinder::new(bytes);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !is_markup_byte(b) {
            i += 1;
            continue;
        }
        out.push_str(&t[copy_from..i]);
        // Single-byte constructs first: they advance by one byte at a time,
        // so they must not measure a run (that would be quadratic on `[[[[`).
        if b == b'\\' {
            // `\*` -> `*`; a backslash before anything else stays.
            match bytes.get(i + 1) {
                Some(&n) if n.is_ascii_punctuation() => {
                    out.push(n as char);
                    i += 2;
                }
                _ => {
                    out.push('\\');
                    i += 1;
                }
            }
            copy_from = i;
            continue;
        }
        if b == b'[' {
            if let Some((text, end)) = links.at(t, i) {
                out.push_str(&strip_inline(text));
                i = end;
            } else {
                out.push('[');
                i += 1;
            }
            copy_from = i;
            continue;
        }
        let run_end = {
            let mut j = i;
            while j < bytes.len() && bytes[j] == b {
                j += 1;
            }
            j
        };
        let run = run_end - i;
        let prev = if i == 0 { None } else { Some(bytes[i - 1]) };
        let next = bytes.get(run_end).copied();
        match b {
            b'`' => {} // code markers: always dropped
            b'|' => {
                // `||` is a spoiler marker; a single `|` is ordinary text.
                if run % 2 == 1 {
                    out.push('|');
                }
            }
            b'~' => {
                if run != 2 {
                    out.push_str(&t[i..run_end]);
                }
            }
            b'*' => {
                // Runs of 1..=3 are emphasis; longer runs are data (`****1234`).
                if run > 3 {
                    out.push_str(&t[i..run_end]);
                }
            }
            b'_' => {
                // Only emphasis at a word boundary: keep `first_last@x.com`.
                if !(boundary(prev) || boundary(next)) {
                    out.push_str(&t[i..run_end]);
                }
            }
            _ => out.push_str(&t[i..run_end]),
        }
        i = run_end;
        copy_from = i;
    }
    out.push_str(&t[copy_from..]);
    let trimmed = out.trim();
    if trimmed.len() != out.len() {
        trimmed.to_owned()
    } else {
        out
    }
}

/// Finds the next occurrence of one byte at or after a position, caching
/// the answer: queries come with non-decreasing positions, so the total scan
/// is linear however many `[` a hostile value holds.
struct NextByte {
    byte: u8,
    /// `Some(Some(p))`: next at `p`; `Some(None)`: none left from `from`.
    cached: Option<Option<usize>>,
    from: usize,
}

impl NextByte {
    fn new(byte: u8) -> Self {
        NextByte {
            byte,
            cached: None,
            from: 0,
        }
    }

    fn find(&mut self, hay: &[u8], at: usize) -> Option<usize> {
        match self.cached {
            Some(Some(p)) if p >= at => return Some(p),
            Some(None) if at >= self.from => return None,
            _ => {}
        }
        let found = hay
            .get(at..)
            .and_then(|h| h.iter().position(|&b| b == self.byte))
            .map(|p| at + p);
        self.cached = Some(found);
        self.from = at;
        found
    }
}

/// Recognises masked links `[text](url)`; links never span lines.
struct LinkFinder<'b> {
    bytes: &'b [u8],
    close_bracket: NextByte,
    close_paren: NextByte,
    newline: NextByte,
}

impl<'b> LinkFinder<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        LinkFinder {
            bytes,
            close_bracket: NextByte::new(b']'),
            close_paren: NextByte::new(b')'),
            newline: NextByte::new(b'\n'),
        }
    }

    /// For `[` at byte `open` of `t`: the link text and the index just past
    /// the closing `)`.
    fn at<'t>(&mut self, t: &'t str, open: usize) -> Option<(&'t str, usize)> {
        let b = self.bytes;
        let close = self.close_bracket.find(b, open + 1)?;
        let nl = self.newline.find(b, open + 1).unwrap_or(usize::MAX);
        if nl < close || b.get(close + 1) != Some(&b'(') {
            return None;
        }
        let paren = self.close_paren.find(b, close + 2)?;
        let nl = self.newline.find(b, close + 2).unwrap_or(usize::MAX);
        if nl < paren {
            return None;
        }
        Some((&t[open + 1..close], paren + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn plain_is_borrowed_and_trimmed() {
        let c = clean("  TEST-7\r");
        assert_eq!(c, "TEST-7");
        assert!(matches!(c, std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn spoiler_keeps_hash() {
        assert_eq!(clean("||#1001-88231||"), "#1001-88231");
        assert_eq!(clean("||buyer.one@example.com||"), "buyer.one@example.com");
    }

    #[test]
    fn emphasis_variants() {
        assert_eq!(clean("**bold**"), "bold");
        assert_eq!(clean("__under__"), "under");
        assert_eq!(clean("*it*"), "it");
        assert_eq!(clean("_it_"), "it");
        assert_eq!(clean("***both***"), "both");
        assert_eq!(clean("~~gone~~"), "gone");
        assert_eq!(clean("**a** and **b**"), "a and b");
        assert_eq!(clean("||**X-1**||"), "X-1");
    }

    #[test]
    fn underscores_inside_words_survive() {
        assert_eq!(clean("first_last@example.com"), "first_last@example.com");
        assert_eq!(
            clean("||first_last@example.com||"),
            "first_last@example.com"
        );
        assert_eq!(clean("_first_last_"), "first_last");
    }

    #[test]
    fn masked_cards_survive() {
        assert_eq!(clean("Visa ****1234"), "Visa ****1234");
    }

    #[test]
    fn code() {
        assert_eq!(clean("`UK-55120`"), "UK-55120");
        assert_eq!(clean("```ORD-1```"), "ORD-1");
        assert_eq!(clean("```\nORD-1\n```"), "ORD-1");
        assert_eq!(clean("```txt\nORD_1_\n```"), "ORD_1_");
        assert_eq!(clean("`a_b_`"), "a_b_");
        assert_eq!(clean("** `UK-55120`"), "UK-55120");
        assert_eq!(clean("order `X` placed"), "order X placed");
    }

    #[test]
    fn links() {
        assert_eq!(
            clean("[Rolex Submariner Date](https://example.com/p/116610)"),
            "Rolex Submariner Date"
        );
        assert_eq!(clean("see [**here**](https://x) now"), "see here now");
        assert_eq!(clean("[not a link]"), "[not a link]");
        assert_eq!(clean("[x](unclosed"), "[x](unclosed");
    }

    #[test]
    fn hostile_brackets_are_linear() {
        let n = 200_000;
        for s in [
            "[".repeat(n),
            "[a](".repeat(n / 4),
            "[".repeat(n) + "]",
            "[]\n".repeat(n / 3),
        ] {
            let t = std::time::Instant::now();
            let _ = clean(&format!("*{s}"));
            assert!(t.elapsed().as_secs() < 2, "quadratic on {:?}...", &s[..8]);
        }
        assert_eq!(clean("*[a](b) [c](d)"), "a c");
        assert_eq!(clean("*[a]\n(b)"), "[a]\n(b)");
        assert_eq!(clean("*[a](b\n)"), "[a](b\n)");
    }

    #[test]
    fn escapes() {
        assert_eq!(clean(r"\*not italic\*"), "*not italic*");
        assert_eq!(clean(r"C:\path"), r"C:\path");
        assert_eq!(clean(r"a\\*b"), r"a\b");
        assert_eq!(clean(r"\[x](y)"), "[x](y)");
    }

    #[test]
    fn single_pipe_kept() {
        assert_eq!(clean("a | b"), "a | b");
    }

    #[test]
    fn multibyte_never_panics() {
        for s in [
            "||é||",
            "**ü",
            "[é](",
            "`ß",
            "_日本_",
            "¥12,000",
            "||",
            "**",
            "`",
            "```",
            "[",
            "\\",
            "[](",
            "[é]()",
            "é\\",
            "~~é~",
            "🎉*🎉",
        ] {
            let _ = clean(s);
        }
        assert_eq!(clean("_日本_"), "日本");
        assert_eq!(clean("||¥12,000||"), "¥12,000");
    }
}
