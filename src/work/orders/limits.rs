//! How much of a webhook an order keeps. A body is up to `server.max_body_bytes`, and a bot (or
//! anyone who can post) may put all of it in one product name or one embed field; kept whole,
//! such orders piled up in memory on their way to the writer while a backlog drained. So every
//! value an order keeps has a limit, well above what Discord itself allows in an embed (a field
//! value is at most 1,024 characters there, a field name 256), and `docs/operations.md` lists
//! them:
//!
//! * a value (product, email, size, site, profile, title, each entry of `fields`) longer than
//!   [`MAX_VALUE_BYTES`] is cut there (at a character boundary) and ends with [`TRUNCATED`];
//! * a label (a key of `fields`) the same way at [`MAX_LABEL_BYTES`];
//! * `fields` keeps the first [`MAX_FIELDS`] labelled values; one more entry, keyed
//!   [`TRUNCATED`], says how many were left out;
//! * an order number longer than [`MAX_ORDER_NUMBER_BYTES`] is not cut (a cut number could
//!   name another order): the message becomes a dead letter saying so.
//!
//! Cleaning reads at most [`SCAN_FACTOR`] times the limit of a value, so a huge value costs a
//! worker no more time or memory than a long one.

use std::borrow::Cow;

/// The most bytes of one value an order keeps, before the marker.
pub const MAX_VALUE_BYTES: usize = 4096;
/// The most bytes of one label (a key of `fields`) an order keeps, before the marker.
pub const MAX_LABEL_BYTES: usize = 1024;
/// The most labelled values `fields` keeps.
pub const MAX_FIELDS: usize = 64;
/// Order numbers longer than this are refused (dead letter), never cut.
pub const MAX_ORDER_NUMBER_BYTES: usize = 128;
/// Ends a value or label that was cut; keys the entry that counts the fields left out.
pub const TRUNCATED: &str = "…[truncated]";
/// How much raw text is cleaned for one value, in multiples of its limit: markup removed by
/// cleaning can make the raw text longer than what is kept, but not by this much in practice.
pub const SCAN_FACTOR: usize = 4;

/// `clean(raw)`, cut to `max` bytes with [`TRUNCATED`] appended when anything was left out.
/// Only the first [`SCAN_FACTOR`] × `max` bytes of `raw` are cleaned.
pub fn bounded<'a>(
    raw: &'a str,
    max: usize,
    clean: impl FnOnce(&'a str) -> Cow<'a, str>,
) -> Cow<'a, str> {
    let scanned = floor_char_boundary(raw, max.saturating_mul(SCAN_FACTOR));
    let cleaned = clean(&raw[..scanned]);
    if scanned == raw.len() && cleaned.len() <= max {
        return cleaned;
    }
    let keep = floor_char_boundary(&cleaned, max);
    let mut cut = String::with_capacity(keep + TRUNCATED.len());
    cut.push_str(cleaned[..keep].trim_end());
    cut.push_str(TRUNCATED);
    Cow::Owned(cut)
}

/// The largest index `<= at` that is a character boundary of `s` (`s.len()` if `at` is past
/// the end).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }

    #[test]
    fn short_values_are_kept_as_they_are() {
        assert!(matches!(bounded("abc", 3, same), Cow::Borrowed("abc")));
        assert_eq!(bounded("", 3, same), "");
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary_and_marked() {
        assert_eq!(bounded("abcdef", 3, same), format!("abc{TRUNCATED}"));
        // `é` is two bytes: a cut inside it moves back before it.
        assert_eq!(bounded("aéé", 2, same), format!("a{TRUNCATED}"));
        assert_eq!(bounded("ab   cd", 4, same), format!("ab{TRUNCATED}"));
    }

    #[test]
    fn only_a_bounded_prefix_is_cleaned() {
        let huge = "x".repeat(1_000_000);
        let seen = std::cell::Cell::new(0);
        let out = bounded(&huge, 10, |s| {
            seen.set(s.len());
            Cow::Borrowed(s)
        });
        assert_eq!(seen.get(), 10 * SCAN_FACTOR);
        assert_eq!(out, format!("{}{TRUNCATED}", "x".repeat(10)));
        // Cleaning that shrinks a cut prefix under the limit still marks it: something was
        // left out.
        let out = bounded(&huge, 10, |_| Cow::Borrowed("short"));
        assert_eq!(out, format!("short{TRUNCATED}"));
    }
}
