//! Price strings to an integer amount in the currency's minor unit.
//!
//! Orders are summed and compared downstream, so prices are stored as integer
//! minor units (cents, pence; whole yen and won, which have no minor unit)
//! plus an ISO 4217 code — never floats. Bots format prices for the shopper's
//! locale, so the parser has to tell a decimal comma (`€99,99`) from a
//! thousands separator (`$1,299`), and read the currency from a symbol
//! (`£`, `CA$`, `zł`) or a code on either side of the number (`USD 99.99`,
//! `449.99 USD`). All arithmetic is checked: an absurd number yields `None`,
//! never a panic or a wrapped amount.

/// A parsed price. `currency` is an ISO 4217 code, either recognised in the
/// input (a `'static` table entry) or the caller's default — never a slice of
/// the input, so a price outlives the string it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price<'d> {
    pub amount_minor: i64,
    pub currency: Option<&'d str>,
}

/// ISO 4217 codes we recognise, with their minor-unit exponent.
const CODES: &[(&str, u32)] = &[
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("CNY", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("NZD", 2),
    ("HKD", 2),
    ("SGD", 2),
    ("TWD", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("ISK", 0),
    ("PLN", 2),
    ("CZK", 2),
    ("HUF", 2),
    ("RON", 2),
    ("BGN", 2),
    ("UAH", 2),
    ("RUB", 2),
    ("TRY", 2),
    ("ILS", 2),
    ("AED", 2),
    ("SAR", 2),
    ("QAR", 2),
    ("KWD", 3),
    ("BHD", 3),
    ("OMR", 3),
    ("JOD", 3),
    ("TND", 3),
    ("INR", 2),
    ("PKR", 2),
    ("IDR", 2),
    ("MYR", 2),
    ("PHP", 2),
    ("THB", 2),
    ("VND", 0),
    ("BRL", 2),
    ("MXN", 2),
    ("ARS", 2),
    ("CLP", 0),
    ("COP", 2),
    ("PEN", 2),
    ("PYG", 0),
    ("UGX", 0),
    ("ZAR", 2),
    ("NGN", 2),
    ("EGP", 2),
    ("KES", 2),
    ("MAD", 2),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

/// Currency symbols (matched case-insensitively for ASCII letters), most
/// specific first where one is a suffix of another (`CA$` before `$`).
const SYMBOLS: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("AU$", "AUD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("NT$", "TWD"),
    ("MX$", "MXN"),
    ("R$", "BRL"),
    ("A$", "AUD"),
    ("C$", "CAD"),
    ("S$", "SGD"),
    ("$", "USD"),
    ("£", "GBP"),
    ("€", "EUR"),
    ("JP¥", "JPY"),
    ("CN¥", "CNY"),
    ("¥", "JPY"),
    ("円", "JPY"),
    ("元", "CNY"),
    ("RMB", "CNY"),
    ("₩", "KRW"),
    ("원", "KRW"),
    ("₹", "INR"),
    ("₽", "RUB"),
    ("₺", "TRY"),
    ("₴", "UAH"),
    ("₫", "VND"),
    ("₪", "ILS"),
    ("฿", "THB"),
    ("₱", "PHP"),
    ("₦", "NGN"),
    ("zł", "PLN"),
    ("kr", "SEK"),
    ("Kč", "CZK"),
    ("Ft", "HUF"),
    ("lei", "RON"),
    ("RM", "MYR"),
    ("Rp", "IDR"),
    ("Fr", "CHF"),
    ("Fr.", "CHF"),
    ("CHF", "CHF"),
];

/// Minor-unit exponent of `code`: table value, else 2 (the ISO norm).
pub fn minor_exponent(code: &str) -> u32 {
    CODES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map_or(2, |&(_, e)| e)
}

/// The canonical (`'static`, upper-case) code for `code` if we know it.
pub fn known_code(code: &str) -> Option<&'static str> {
    CODES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|&(c, _)| c)
}

fn symbol_code(token: &str) -> Option<&'static str> {
    SYMBOLS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(token))
        .map(|&(_, c)| c)
}

/// Currency named by the text just before the number (`CA$`, `USD`, `€`).
/// Tries the whole last token, then its longest known tail (`~$` -> `$`),
/// never splitting a letter run (`XUSD` is not `USD`).
fn currency_before(prefix: &str) -> Option<&'static str> {
    let p = prefix.trim_end();
    let token = p.rsplit(char::is_whitespace).next().unwrap_or(p);
    let token = token
        .trim_start_matches(['(', '~', '≈', '-', '−', '+'])
        .trim_end_matches(['-', '−', '+']);
    if token.is_empty() {
        return None;
    }
    let bare = token.trim_end_matches('.');
    if let Some(c) = known_code(token)
        .or_else(|| symbol_code(token))
        .or_else(|| symbol_code(bare))
    {
        return Some(c);
    }
    for (i, _) in token.char_indices().skip(1) {
        let tail = &token[i..];
        let before = token[..i].chars().next_back();
        let starts_alpha = tail.chars().next().is_some_and(char::is_alphabetic);
        if starts_alpha && before.is_some_and(char::is_alphabetic) {
            continue;
        }
        if let Some(c) = symbol_code(tail) {
            return Some(c);
        }
    }
    None
}

/// Currency named by the text just after the number (`€`, `USD`, `zł`).
fn currency_after(suffix: &str) -> Option<&'static str> {
    let s = suffix.trim_start();
    let end = s
        .find(|c: char| {
            c.is_whitespace() || c.is_ascii_digit() || matches!(c, ')' | ',' | ';' | '/')
        })
        .unwrap_or(s.len());
    let token = &s[..end];
    if token.is_empty() {
        return None;
    }
    let bare = token.trim_end_matches('.');
    known_code(bare)
        .or_else(|| symbol_code(token))
        .or_else(|| symbol_code(bare))
        .or_else(|| {
            // A symbol glued to more text (`€*`, `$(incl. tax)`): leading symbol.
            let first = token.chars().next()?;
            if first.is_alphabetic() {
                None
            } else {
                symbol_code(&token[..first.len_utf8()])
            }
        })
}

/// Thousands separators that are never decimal points (space, NBSP, narrow
/// NBSP, thin space, apostrophes as in Swiss `1'299.00`).
fn is_group_only(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}' | '\'' | '\u{2019}'
    )
}

/// Parses a price. The currency comes from the input, else `default_currency`
/// (which also decides the minor-unit exponent), else `None` with the amount
/// read as having two decimals. Returns `None` when there is no number or it
/// does not fit an `i64` of minor units.
pub fn parse_price<'d>(input: &str, default_currency: Option<&'d str>) -> Option<Price<'d>> {
    let s = input.trim();
    let b = s.as_bytes();
    let mut start = b.iter().position(u8::is_ascii_digit)?;
    // `.5` / `,50`: a separator right before the first digit starts the number.
    if start > 0 && matches!(b[start - 1], b'.' | b',') {
        start -= 1;
    }

    // Extent of the number: digits and separators, where a space-like group
    // separator only counts when a digit follows it.
    let mut end = start;
    let mut chars = s[start..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        let pos = start + off;
        if c.is_ascii_digit() || c == '.' || c == ',' {
            end = pos + 1;
        } else if is_group_only(c) && chars.peek().is_some_and(|&(_, n)| n.is_ascii_digit()) {
            end = pos + c.len_utf8();
        } else {
            break;
        }
    }
    let mut number = &s[start..end];
    let mut suffix = &s[end..];
    // `CHF 120.-` / `120,–`: a trailing separator then a dash means no minor part.
    while let Some(last) = number.chars().next_back() {
        if last == '.' || last == ',' || is_group_only(last) {
            number = &number[..number.len() - last.len_utf8()];
        } else {
            break;
        }
    }
    if let Some(rest) = s[start + number.len()..]
        .strip_prefix(['.', ','])
        .and_then(|r| r.strip_prefix(['-', '–', '—']))
    {
        suffix = rest;
    }
    let prefix = &s[..start];
    let negative =
        prefix.trim_end().ends_with(['-', '−']) || prefix.trim_start().starts_with(['-', '−']);

    // An explicit code after the number beats a symbol before it
    // (`$49.00 CAD` is CAD, not the USD that a bare `$` means).
    let found = code_after(suffix)
        .or_else(|| currency_before(prefix))
        .or_else(|| currency_after(suffix));
    let currency: Option<&'d str> = match found {
        Some(c) => Some(c),
        None => default_currency,
    };
    let exp = currency.map_or(2, minor_exponent);

    let (int_digits, frac_digits) = split_number(number, exp)?;
    // Grouping belongs to the integer part only (`0, 0` is not a price).
    if !frac_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut amount: i64 = 0;
    for d in int_digits.bytes().filter(u8::is_ascii_digit) {
        amount = amount.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    let mut frac = frac_digits.bytes();
    for _ in 0..exp {
        let d = frac.next().map_or(0, |d| i64::from(d - b'0'));
        amount = amount.checked_mul(10)?.checked_add(d)?;
    }
    // Round half up on the first dropped digit (`¥1200.5` -> 1201).
    if frac.next().is_some_and(|d| d >= b'5') {
        amount = amount.checked_add(1)?;
    }
    if negative {
        amount = amount.checked_neg()?;
    }
    Some(Price {
        amount_minor: amount,
        currency,
    })
}

/// A known ISO code directly after the number (`449.99 USD`, `449.99USD`).
fn code_after(suffix: &str) -> Option<&'static str> {
    let t = suffix.trim_start();
    let n = t.bytes().take_while(u8::is_ascii_alphabetic).count();
    if n == 3 {
        known_code(&t[..3])
    } else {
        None
    }
}

/// Splits a number such as `1,299.99`, `1.299,99`, `99,99`, `12,000`,
/// `1 299,99` into (integer digits with separators, fraction digits).
/// `exp` breaks the one real ambiguity: a single separator followed by exactly
/// three digits is a decimal point only for three-decimal currencies.
/// Returns `None` for shapes that are not a price (`27.11.2026`).
fn split_number(number: &str, exp: u32) -> Option<(&str, &str)> {
    let last_dot = number.rfind('.');
    let last_comma = number.rfind(',');
    let decimal_at = match (last_dot, last_comma) {
        (None, None) => None,
        // Both kinds: whichever comes last is the decimal separator.
        (Some(d), Some(c)) => {
            let (dec, grp) = if d > c { (d, ',') } else { (c, '.') };
            let dec_char = if d > c { '.' } else { ',' };
            if number[..dec].contains(dec_char) || number[dec + 1..].contains(grp) {
                return None;
            }
            Some(dec)
        }
        (Some(p), None) | (None, Some(p)) => {
            let sep = number.as_bytes()[p];
            let count = number.bytes().filter(|&b| b == sep).count();
            if count > 1 {
                // Repeated: grouping (`1,299,999`), groups must be 3 digits.
                let mut groups = number.split(sep as char);
                let first = groups.next().unwrap_or("");
                if first.is_empty() || groups.any(|g| digit_count(g) != 3) {
                    return None;
                }
                None
            } else {
                let after = digit_count(&number[p + 1..]);
                let before = &number[..p];
                let leading_zero = before.trim_start_matches(is_group_only) == "0";
                if after == 3 && exp != 3 && !leading_zero {
                    None
                } else {
                    Some(p)
                }
            }
        }
    };
    Some(match decimal_at {
        Some(p) => (&number[..p], &number[p + 1..]),
        None => (number, ""),
    })
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<(i64, Option<&str>)> {
        parse_price(s, None).map(|p| (p.amount_minor, p.currency))
    }

    #[test]
    fn common_forms() {
        assert_eq!(p("$99.99"), Some((9999, Some("USD"))));
        assert_eq!(p("$1,299.99"), Some((129999, Some("USD"))));
        assert_eq!(p("$12,499.00"), Some((1249900, Some("USD"))));
        assert_eq!(p("£140.00"), Some((14000, Some("GBP"))));
        assert_eq!(p("£110"), Some((11000, Some("GBP"))));
        assert_eq!(p("$5.5"), Some((550, Some("USD"))));
    }

    #[test]
    fn decimal_comma_and_european_grouping() {
        assert_eq!(p("€99,99"), Some((9999, Some("EUR"))));
        assert_eq!(p("1.299,99 €"), Some((129999, Some("EUR"))));
        assert_eq!(p("1 299,99 €"), Some((129999, Some("EUR"))));
        assert_eq!(p("1\u{202f}299,99\u{a0}€"), Some((129999, Some("EUR"))));
        assert_eq!(p("1.299 €"), Some((129900, Some("EUR"))));
        assert_eq!(p("$1,299"), Some((129900, Some("USD"))));
        assert_eq!(p("0,299 €"), Some((30, Some("EUR"))));
        assert_eq!(p("1'299.00 CHF"), Some((129900, Some("CHF"))));
        assert_eq!(p("₹1,23,456.00"), Some((12345600, Some("INR"))));
    }

    #[test]
    fn codes_either_side() {
        assert_eq!(p("99.99 USD"), Some((9999, Some("USD"))));
        assert_eq!(p("USD 99.99"), Some((9999, Some("USD"))));
        assert_eq!(p("usd99.99"), Some((9999, Some("USD"))));
        assert_eq!(p("449.99USD"), Some((44999, Some("USD"))));
        assert_eq!(p("$49.00 CAD"), Some((4900, Some("CAD"))));
        assert_eq!(p("99.99 PLN"), Some((9999, Some("PLN"))));
        assert_eq!(p("(USD 5.00)"), Some((500, Some("USD"))));
    }

    #[test]
    fn qualified_dollars() {
        assert_eq!(p("CA$ 49.00"), Some((4900, Some("CAD"))));
        assert_eq!(p("CA$49.00"), Some((4900, Some("CAD"))));
        assert_eq!(p("A$ 10"), Some((1000, Some("AUD"))));
        assert_eq!(p("AU$10.00"), Some((1000, Some("AUD"))));
        assert_eq!(p("C$ 10.00"), Some((1000, Some("CAD"))));
        assert_eq!(p("US$ 10.00"), Some((1000, Some("USD"))));
        assert_eq!(p("HK$ 10.00"), Some((1000, Some("HKD"))));
        assert_eq!(p("NZ$10.00"), Some((1000, Some("NZD"))));
        assert_eq!(p("R$ 1.299,90"), Some((129990, Some("BRL"))));
        assert_eq!(p("~$10"), Some((1000, Some("USD"))));
    }

    #[test]
    fn zero_and_three_decimal_currencies() {
        assert_eq!(p("¥12,000"), Some((12000, Some("JPY"))));
        assert_eq!(p("¥12000"), Some((12000, Some("JPY"))));
        assert_eq!(p("12.000 円"), Some((12000, Some("JPY"))));
        assert_eq!(p("₩50,000"), Some((50000, Some("KRW"))));
        assert_eq!(p("1,500,000 VND"), Some((1500000, Some("VND"))));
        assert_eq!(p("CLP 9.990"), Some((9990, Some("CLP"))));
        assert_eq!(p("ISK 1.990"), Some((1990, Some("ISK"))));
        assert_eq!(p("¥1200.5"), Some((1201, Some("JPY"))));
        assert_eq!(p("KWD 1.250"), Some((1250, Some("KWD"))));
        assert_eq!(p("BHD 12.5"), Some((12500, Some("BHD"))));
    }

    #[test]
    fn letter_symbols() {
        assert_eq!(p("99,99 zł"), Some((9999, Some("PLN"))));
        assert_eq!(p("1 299 kr"), Some((129900, Some("SEK"))));
        assert_eq!(p("299 SEK"), Some((29900, Some("SEK"))));
        assert_eq!(p("CHF 120.-"), Some((12000, Some("CHF"))));
        assert_eq!(p("CHF 120.–"), Some((12000, Some("CHF"))));
        assert_eq!(p("499 Kč"), Some((49900, Some("CZK"))));
        assert_eq!(p("kr. 99"), Some((9900, Some("SEK"))));
    }

    #[test]
    fn default_currency_and_unknown() {
        assert_eq!(p("99.99"), Some((9999, None)));
        assert_eq!(
            parse_price("99.99", Some("EUR")),
            Some(Price {
                amount_minor: 9999,
                currency: Some("EUR")
            })
        );
        // The default decides the exponent too.
        assert_eq!(
            parse_price("12,000", Some("JPY")).map(|p| p.amount_minor),
            Some(12000)
        );
        // Text that is not a currency is ignored.
        assert_eq!(p("99.99 each"), Some((9999, None)));
        assert_eq!(p("XUSD 5"), Some((500, None)));
    }

    #[test]
    fn negatives() {
        assert_eq!(p("-$5.00"), Some((-500, Some("USD"))));
        assert_eq!(p("$-5.00"), Some((-500, Some("USD"))));
    }

    #[test]
    fn rejects() {
        assert_eq!(p(""), None);
        assert_eq!(p("Free"), None);
        assert_eq!(p("$"), None);
        assert_eq!(p("27.11.2026"), None);
        assert_eq!(p("1,2,3"), None);
        assert_eq!(p("1.2,3.4"), None);
        assert_eq!(p("$99999999999999999999.99"), None);
        assert_eq!(p("$92233720368547758.07"), Some((i64::MAX, Some("USD"))));
        assert_eq!(p("$92233720368547758.08"), None);
        let long = "9".repeat(10_000);
        assert_eq!(p(&long), None);
    }

    #[test]
    fn multibyte_never_panics() {
        for s in [
            "€",
            "1€",
            "€1,",
            "1,€",
            "¥",
            "¥1.",
            "1.¥-",
            "日本1",
            "1\u{a0}",
            "1\u{a0}€",
            "–1",
            "1.–",
            "CA$",
            "$.",
            ".5",
            ",5",
            "R$1",
            "₩",
            "zł1",
            "1zł",
            "é1é",
        ] {
            let _ = p(s);
            let _ = parse_price(s, Some("JPY"));
        }
        assert_eq!(p(".5"), Some((50, None)));
        assert_eq!(p("0, 0"), None);
        assert_eq!(p("1,2 3"), None);
    }
}
