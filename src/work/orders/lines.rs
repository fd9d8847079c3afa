//! Label/value pairs from free text (an embed `description`, the message
//! `content`, a multi-line field value).
//!
//! Bots use two layouts, sometimes mixed in one message:
//!
//! * one pair per line: `Label: value`, `**Label:** value`, `**Label**: value`;
//! * alternating lines, label then value (e.g.
//!   `Product\nX\nPrice\n$99.99\n…`), possibly with a header line such as
//!   `Successful checkout!` in front, or `Label:` alone on its line.
//!
//! Alternating lines are read with a one-line look-behind: a line that is a
//! known alias (or ends with `:`) is a *strong* label and takes the next line
//! as its value whatever it contains (a value may itself contain a colon); any
//! other short line is a *weak* label that yields to a following known label
//! or `Label: value` line, so a heading never shifts the pairing. A blank
//! line ends a pending label.

use std::borrow::Cow;

use super::labels::{clean_label, custom_emoji_len, shortcode_len, AliasTable, Target};

/// A label longer than this (cleaned) is prose, not a label.
const MAX_LABEL: usize = 64;
/// Only this many leading bytes of a line are searched for the `:`
/// separator, which bounds work on huge single-line inputs.
const MAX_LABEL_RAW: usize = 256;

/// How one line reads.
enum Line<'a> {
    /// `Label: value`.
    Pair(Cow<'a, str>, Option<Target>, &'a str),
    /// A line that is certainly a label: known alias, or ends with `:`.
    Label(Cow<'a, str>, Option<Target>),
    /// Anything else; `Some` if it could be an unknown label.
    Other(Option<Cow<'a, str>>),
}

/// Calls `emit(label, target, raw_value)` for every pair found in `text`, in
/// order. `label` is cleaned (see [`clean_label`]); the value is raw (the
/// caller cleans it) but never empty after trimming.
pub fn pairs<'a>(
    text: &'a str,
    aliases: &AliasTable,
    scratch: &mut String,
    mut emit: impl FnMut(Cow<'a, str>, Option<Target>, &'a str),
) {
    // (label, target, strong)
    let mut pending: Option<(Cow<'a, str>, Option<Target>, bool)> = None;
    for raw in LogicalLines(text) {
        let line = raw.trim();
        if line.is_empty() {
            pending = None;
            continue;
        }
        // A strong label takes this line whatever it is — unless the line is
        // a `Label: value` for a known field, which means the "label" was a
        // heading (`Order\nOrder Number: A-1`). A weak label takes the line
        // only if it is not itself a label.
        let weak = match pending.take() {
            Some((label, target, true)) => {
                match known_pair(line, aliases, scratch) {
                    Some((l, t, v)) => emit(l, Some(t), v),
                    None => emit(label, target, line),
                }
                continue;
            }
            weak => weak,
        };
        match classify(line, aliases, scratch) {
            Line::Pair(label, target, value) => emit(label, target, value),
            Line::Label(label, target) => pending = Some((label, target, true)),
            Line::Other(maybe_label) => match weak {
                Some((label, target, _)) => emit(label, target, line),
                None => pending = maybe_label.map(|l| (l, None, false)),
            },
        }
    }
}

/// Lines of `text`, except that a code block opened on one line runs to the
/// line that closes it (```` ``` ```` blocks span lines: `Order:\n```\nX\n``` `).
struct LogicalLines<'a>(&'a str);

impl<'a> Iterator for LogicalLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.0;
        if text.is_empty() {
            return None;
        }
        let mut end = text.find('\n').unwrap_or(text.len());
        if text[..end].matches("```").count() % 2 == 1 {
            // Extend to the end of the line holding the closing fence.
            if let Some(close) = text[end..].find("```") {
                let after = end + close + 3;
                end = text[after..].find('\n').map_or(text.len(), |n| after + n);
            }
        }
        let line = &text[..end];
        self.0 = text.get(end + 1..).unwrap_or("");
        Some(line)
    }
}

/// `line` as a `Label: value` pair whose label is a known alias.
fn known_pair<'a>(
    line: &'a str,
    aliases: &AliasTable,
    scratch: &mut String,
) -> Option<(Cow<'a, str>, Target, &'a str)> {
    let (label_raw, value_raw, _) = split_colon(line)?;
    let label = clean_label(label_raw);
    if label.is_empty() || label.len() > MAX_LABEL {
        return None;
    }
    let target = aliases.lookup(&label, scratch)?;
    let value = strip_closing_marker(label_raw, value_raw).trim();
    (!value.is_empty()).then_some((label, target, value))
}

fn classify<'a>(line: &'a str, aliases: &AliasTable, scratch: &mut String) -> Line<'a> {
    if let Some((label_raw, value_raw, spaced)) = split_colon(line) {
        let label = clean_label(label_raw);
        if !label.is_empty() && label.len() <= MAX_LABEL {
            let target = aliases.lookup(&label, scratch);
            // `18:04` / `ab:cd`: a colon glued to the next word only separates
            // a label we know.
            if spaced || target.is_some() {
                let value = strip_closing_marker(label_raw, value_raw);
                return if value.trim().is_empty() {
                    Line::Label(label, target)
                } else {
                    Line::Pair(label, target, value.trim())
                };
            }
        }
    }
    if line.len() > MAX_LABEL_RAW {
        return Line::Other(None);
    }
    let label = clean_label(line);
    if label.is_empty() || label.len() > MAX_LABEL {
        return Line::Other(None);
    }
    if let Some(target) = aliases.lookup(&label, scratch) {
        return Line::Label(label, Some(target));
    }
    if could_be_label(&label) {
        Line::Other(Some(label))
    } else {
        Line::Other(None)
    }
}

/// Short, word-like text that is not a sentence: `Mode`, `Proxy List`.
fn could_be_label(label: &str) -> bool {
    label.len() <= 40
        && label.bytes().filter(|&b| b == b' ').count() <= 4
        && !label.ends_with(['.', '!', '?', ','])
        && label.chars().any(char::is_alphabetic)
        && !label.contains("://")
}

/// Finds the label/value separator: the first `:` that is not part of an
/// emoji code (`:package:`, `<:name:id>`). A line whose first colon is a
/// URL's (`https://`) has none. Returns (label, value, whether whitespace or
/// markup or the end follows the colon).
fn split_colon(line: &str) -> Option<(&str, &str, bool)> {
    let b = line.as_bytes();
    let limit = b.len().min(MAX_LABEL_RAW);
    let mut i = 0;
    while i < limit {
        match b[i] {
            b':' => {
                if let Some(n) = shortcode_len(b, i) {
                    i += n;
                    continue;
                }
                let rest = &b[i + 1..];
                if rest.starts_with(b"//") {
                    return None;
                }
                let spaced = rest.first().is_none_or(|&c| {
                    c.is_ascii_whitespace() || matches!(c, b'*' | b'_' | b'|' | b'`' | b'~')
                });
                return Some((&line[..i], &line[i + 1..], spaced));
            }
            b'<' => {
                i += custom_emoji_len(b, i).unwrap_or(1);
            }
            _ => i += 1,
        }
    }
    None
}

/// In `**Label:** value` the bold closes after the colon; drop that closing
/// run from the value so it does not read as an opening marker.
fn strip_closing_marker<'a>(label_raw: &str, value_raw: &'a str) -> &'a str {
    let l = label_raw.trim_start().as_bytes();
    let run = l
        .iter()
        .take_while(|&&c| matches!(c, b'*' | b'_' | b'~' | b'|'))
        .count();
    if run == 0 || label_raw.trim_end().ends_with(['*', '_', '~', '|']) {
        return value_raw;
    }
    let marker = &label_raw.trim_start()[..run];
    let v = value_raw.trim_start();
    v.strip_prefix(marker).unwrap_or(value_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Vec<(String, Option<Target>, String)> {
        let aliases = AliasTable::default();
        let mut scratch = String::new();
        let mut out = Vec::new();
        pairs(text, &aliases, &mut scratch, |l, t, v| {
            out.push((l.into_owned(), t, v.to_owned()))
        });
        out
    }

    fn labels_values(text: &str) -> Vec<(String, String)> {
        collect(text).into_iter().map(|(l, _, v)| (l, v)).collect()
    }

    #[test]
    fn alternating_label_value_form() {
        let got = collect("Product\nTest Product 7\nPrice\n$99.99\nOrder Number\nTEST-7\nEmail\ntest7@example.com");
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[2],
            (
                "Order Number".into(),
                Some(Target::OrderNumber),
                "TEST-7".into()
            )
        );
        assert_eq!(got[1].1, Some(Target::Price));
    }

    #[test]
    fn inline_forms() {
        assert_eq!(
            labels_values("**Product:** Dunk Low\n**Order**: `UK-1`\nEmail: a@b.c\r\n__Size:__ 9"),
            vec![
                ("Product".into(), "Dunk Low".into()),
                ("Order".into(), "`UK-1`".into()),
                ("Email".into(), "a@b.c".into()),
                ("Size".into(), "9".into()),
            ]
        );
    }

    #[test]
    fn heading_does_not_shift_alternating_pairs() {
        assert_eq!(
            labels_values("Successful checkout!\nProduct\nX\nPrice\n$1"),
            vec![
                ("Product".into(), "X".into()),
                ("Price".into(), "$1".into())
            ]
        );
        // An unknown short heading yields to a following known label.
        assert_eq!(
            labels_values("New Order\nOrder Number\nA-1"),
            vec![("Order Number".into(), "A-1".into())]
        );
    }

    #[test]
    fn unknown_alternating_labels_are_kept() {
        assert_eq!(
            labels_values("Mode\nFast\nOrder\nA-1"),
            vec![
                ("Mode".into(), "Fast".into()),
                ("Order".into(), "A-1".into())
            ]
        );
    }

    #[test]
    fn strong_label_takes_value_with_colon() {
        assert_eq!(
            labels_values("Product\nFoo: Bar Edition\nOrder Number\nA:1"),
            vec![
                ("Product".into(), "Foo: Bar Edition".into()),
                ("Order Number".into(), "A:1".into())
            ]
        );
    }

    #[test]
    fn known_label_heading_yields_to_known_pair() {
        assert_eq!(
            labels_values("Order\nOrder Number: A-1\nProduct: X"),
            vec![
                ("Order Number".into(), "A-1".into()),
                ("Product".into(), "X".into())
            ]
        );
    }

    #[test]
    fn header_line_with_colon() {
        assert_eq!(
            labels_values("**Order Number:**\n`A-1`\nCustom Thing:\nyes"),
            vec![
                ("Order Number".into(), "`A-1`".into()),
                ("Custom Thing".into(), "yes".into())
            ]
        );
    }

    #[test]
    fn blank_line_ends_pending_label() {
        assert_eq!(
            labels_values("Profile\n\nOrder: A-1"),
            vec![("Order".into(), "A-1".into())]
        );
    }

    #[test]
    fn emoji_and_urls() {
        assert_eq!(
            labels_values(
                ":package: Product: Box\n<:shop:123> Site: Shop\nhttps://example.com/a:b"
            ),
            vec![
                ("Product".into(), "Box".into()),
                ("Site".into(), "Shop".into())
            ]
        );
    }

    #[test]
    fn times_and_prose_are_not_pairs() {
        assert!(labels_values("Placed at 18:04").is_empty());
        assert!(labels_values("hello from a monitor, no order here").is_empty());
        // ...but a known label glued to its value is.
        assert_eq!(
            labels_values("Order:A-1"),
            vec![("Order".into(), "A-1".into())]
        );
    }

    #[test]
    fn code_blocks_span_lines() {
        assert_eq!(
            labels_values("Order Number\n```\nMD-303\n```\nEmail: a@b.c"),
            vec![
                ("Order Number".into(), "```\nMD-303\n```".into()),
                ("Email".into(), "a@b.c".into())
            ]
        );
        assert_eq!(
            labels_values("Order: ```txt\nMD-1\n```"),
            vec![("Order".into(), "```txt\nMD-1\n```".into())]
        );
        // An unclosed fence is just a line.
        assert_eq!(
            labels_values("Order: ```\nEmail: a@b.c"),
            vec![
                ("Order".into(), "```".into()),
                ("Email".into(), "a@b.c".into())
            ]
        );
        let lines: Vec<&str> = LogicalLines("a\n\nb\n").collect();
        assert_eq!(lines, vec!["a", "", "b"]);
    }

    #[test]
    fn never_panics_on_odd_lines() {
        for s in [
            ":",
            "::",
            ":a:",
            "<:",
            "<a:x:1>",
            "**:**",
            "é:é",
            ":é",
            "\n\n",
            "a\n",
            "🎉:🎉",
        ] {
            let _ = collect(s);
        }
        let long = "é".repeat(10_000) + ": x";
        let _ = collect(&long);
    }
}
