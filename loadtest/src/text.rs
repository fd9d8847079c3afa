//! Text helpers for messages: a leaf module every other module may import.

/// At most 200 characters of `s` on one line, for error messages.
pub fn clip(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(200).collect();
    if out.len() < one_line.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_is_one_short_line() {
        assert_eq!(clip("a\n  b"), "a b");
        let long = "x".repeat(500);
        assert_eq!(clip(&long).len(), 203);
    }
}
