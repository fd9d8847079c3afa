//! Webhook body -> [`Order`].
//!
//! The body is Discord webhook JSON as checkout bots send it. Labelled values
//! are gathered from every place bots put them — embed `description` lines,
//! embed `fields`, the message `content` — and routed to order fields through
//! the alias table. Every error is *permanent*: the same bytes will never
//! parse on a retry, so the worker dead-letters them with the error's text.
//!
//! Each embed (and the content) is read on its own. The first embed that
//! yields an order number is the order; the other sources only fill fields it
//! lacks, so a banner or upsell embed never overrides the order's product or
//! price. Within one source the first usable value for a field wins.
//!
//! The parser never panics on any input: JSON nesting is bounded by
//! serde_json's recursion limit, non-string values are stringified or skipped,
//! and all text handling splits only at char boundaries.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::labels::{clean_label, AliasTable, Target};
use super::limits::{self, MAX_FIELDS, MAX_LABEL_BYTES, MAX_ORDER_NUMBER_BYTES, MAX_VALUE_BYTES};
use super::lines;
use super::markdown;
use super::price::{parse_price, Price};
use super::Order;

/// Why a body yields no order. Every variant is permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON (or nests deeper than serde_json's limit).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but no order number anywhere; the text says what was
    /// looked at.
    #[error("no order number found ({0})")]
    NoOrderNumber(String),
    /// The order number is over `MAX_ORDER_NUMBER_BYTES`; the text quotes its start.
    #[error("order number longer than {MAX_ORDER_NUMBER_BYTES} bytes (starts {0:?})")]
    OrderNumberTooLong(String),
}

impl ParseError {
    /// Whether retrying the same body could succeed. Always true for now;
    /// the processor uses it to choose dead-letter over retry.
    pub fn is_permanent(&self) -> bool {
        match self {
            ParseError::InvalidJson(_)
            | ParseError::NoOrderNumber(_)
            | ParseError::OrderNumberTooLong(_) => true,
        }
    }
}

/// Extracts orders from webhook bodies. Build once (aliases are normalised
/// up front) and share: `parse` takes `&self`.
#[derive(Debug, Clone)]
pub struct OrderParser {
    aliases: AliasTable,
    default_currency: Option<String>,
    /// `looked for labels "Order Number", ...` for NoOrderNumber messages.
    looked_for: String,
}

impl Default for OrderParser {
    fn default() -> Self {
        let aliases = AliasTable::default();
        let looked_for = looked_for(&aliases);
        OrderParser {
            aliases,
            default_currency: None,
            looked_for,
        }
    }
}

/// How many order-number labels an error message quotes before `...`.
const QUOTED_LABELS: usize = 4;

fn looked_for(aliases: &AliasTable) -> String {
    let builtin = Target::OrderNumber.default_aliases().len();
    let labels = aliases.order_labels();
    let quote = |ls: &[String]| {
        ls.iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = QUOTED_LABELS.min(builtin).min(labels.len());
    let mut s = format!("looked for labels {}", quote(&labels[..shown]));
    if builtin > shown {
        s.push_str(" ...");
    }
    // Configured labels are the likeliest to matter: always quote them.
    if let Some(configured) = labels.get(builtin..).filter(|c| !c.is_empty()) {
        s.push_str(" and configured ");
        s.push_str(&quote(configured));
    }
    s
}

impl OrderParser {
    /// A parser with the built-in aliases extended by `extra_aliases`
    /// (target field name -> extra labels; an extra label wins over a
    /// built-in one) and an optional ISO 4217 currency for prices that name
    /// none.
    pub fn new(
        extra_aliases: &BTreeMap<String, Vec<String>>,
        default_currency: Option<&str>,
    ) -> Result<OrderParser, String> {
        let aliases = AliasTable::new(extra_aliases)?;
        let default_currency = match default_currency {
            None => None,
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(c.to_ascii_uppercase())
            }
            Some(c) => {
                return Err(format!(
                    "orders.default_currency: {c:?} is not a 3-letter ISO 4217 code"
                ))
            }
        };
        let looked_for = looked_for(&aliases);
        Ok(OrderParser {
            aliases,
            default_currency,
            looked_for,
        })
    }

    /// Extracts the order from a webhook body.
    pub fn parse(&self, body: &[u8]) -> Result<Order, ParseError> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| ParseError::InvalidJson(e.to_string()))?;
        let obj = match &root {
            Value::Object(o) => o,
            other => {
                return Err(ParseError::NoOrderNumber(format!(
                    "body is a JSON {}, not an object",
                    kind(other)
                )))
            }
        };
        let embeds: &[Value] = match obj.get("embeds") {
            Some(Value::Array(a)) => a,
            Some(v @ Value::Object(_)) => std::slice::from_ref(v),
            _ => &[],
        };
        let default = self.default_currency.as_deref();
        let mut scratch = String::new();
        let mut sources: Vec<Found<'_, '_>> = Vec::with_capacity(embeds.len() + 1);
        for e in embeds {
            if let Value::Object(e) = e {
                let mut f = Found::new(default);
                self.read_embed(e, &mut f, &mut scratch);
                sources.push(f);
            }
        }
        let embed_count = sources.len();
        let content = obj.get("content").and_then(Value::as_str).unwrap_or("");
        if !content.trim().is_empty() {
            let mut f = Found::new(default);
            self.read_text(content, &mut f, &mut scratch);
            sources.push(f);
        }

        let Some(primary) = sources
            .iter()
            .position(|f| f.slot[Target::OrderNumber.index()].is_some())
        else {
            let where_ = if content.trim().is_empty() {
                "no content"
            } else {
                "content"
            };
            return Err(ParseError::NoOrderNumber(format!(
                "{} in {embed_count} embed(s) and {where_}",
                self.looked_for
            )));
        };
        let order = assemble(sources, primary);
        if order.order_number.len() > MAX_ORDER_NUMBER_BYTES {
            let start = order.order_number.chars().take(32).collect();
            return Err(ParseError::OrderNumberTooLong(start));
        }
        Ok(order)
    }

    fn read_embed<'v>(
        &self,
        e: &'v Map<String, Value>,
        f: &mut Found<'v, '_>,
        scratch: &mut String,
    ) {
        f.title = e
            .get("title")
            .and_then(Value::as_str)
            .or_else(|| e.get("author")?.get("name")?.as_str())
            .map(value_text)
            .filter(|t| !t.is_empty());
        if let Some(d) = e.get("description").and_then(Value::as_str) {
            self.read_text(d, f, scratch);
        }
        let Some(Value::Array(fields)) = e.get("fields") else {
            return;
        };
        for field in fields {
            let (Some(name), Some(value)) = (field.get("name"), field.get("value")) else {
                continue;
            };
            let (Some(name), Some(value)) = (scalar(name), scalar(value)) else {
                continue;
            };
            let label = match name {
                Cow::Borrowed(n) => label_text(n),
                Cow::Owned(n) => Cow::Owned(label_text(&n).into_owned()),
            };
            let target = if label.is_empty() {
                None
            } else {
                self.aliases.lookup(&label, scratch)
            };
            // A field like `Details` holding `Order: X\nEmail: Y` lines.
            if target.is_none() && (value.contains('\n') || value.contains(':')) {
                if let Cow::Borrowed(v) = value {
                    self.read_text(v, f, scratch);
                }
            }
            let value = match value {
                Cow::Borrowed(v) => value_text(v),
                Cow::Owned(v) => Cow::Owned(value_text(&v).into_owned()),
            };
            f.offer(label, target, value);
        }
    }

    fn read_text<'v>(&self, text: &'v str, f: &mut Found<'v, '_>, scratch: &mut String) {
        lines::pairs(text, &self.aliases, scratch, |label, target, value| {
            f.offer(label, target, value_text(value));
        });
    }
}

/// A value as the order keeps it: markdown removed, within [`MAX_VALUE_BYTES`].
fn value_text(raw: &str) -> Cow<'_, str> {
    limits::bounded(raw, MAX_VALUE_BYTES, markdown::clean)
}

/// A label as the order keeps it: cleaned, within [`MAX_LABEL_BYTES`].
fn label_text(raw: &str) -> Cow<'_, str> {
    limits::bounded(raw, MAX_LABEL_BYTES, clean_label)
}

/// JSON kind name for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A field name/value as text: strings borrowed, numbers and booleans
/// stringified (some bots send `"value": 1001`), anything else skipped.
fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// What one source (an embed, or the content) yielded.
struct Found<'v, 'd> {
    default_currency: Option<&'d str>,
    /// Every pair, in order of appearance, up to [`MAX_FIELDS`] (and those a target chose).
    pairs: Vec<(Cow<'v, str>, Cow<'v, str>)>,
    /// Pairs left out past [`MAX_FIELDS`].
    dropped: usize,
    /// Per target: index into `pairs` of the value chosen (text targets).
    slot: [Option<usize>; Target::ALL.len()],
    price: Option<Price<'d>>,
    quantity: Option<i64>,
    title: Option<Cow<'v, str>>,
}

impl<'v, 'd> Found<'v, 'd> {
    fn new(default_currency: Option<&'d str>) -> Self {
        Found {
            default_currency,
            pairs: Vec::new(),
            dropped: 0,
            slot: [None; Target::ALL.len()],
            price: None,
            quantity: None,
            title: None,
        }
    }

    /// Records a pair; the first usable value for each target wins (a price
    /// or quantity must parse to count). Past [`MAX_FIELDS`] pairs only those a target
    /// chooses are kept, so a body of many short lines holds no more than a few.
    fn offer(&mut self, label: Cow<'v, str>, target: Option<Target>, value: Cow<'v, str>) {
        if value.is_empty() {
            return;
        }
        let mut chosen = None;
        match target {
            Some(Target::Price) if self.price.is_none() => {
                self.price = parse_price(&value, self.default_currency);
            }
            Some(Target::Quantity) if self.quantity.is_none() => {
                self.quantity = parse_quantity(&value);
            }
            Some(Target::Price | Target::Quantity) => {}
            Some(t) if self.slot[t.index()].is_none() && !label.is_empty() => chosen = Some(t),
            Some(_) | None => {}
        }
        if label.is_empty() {
            return;
        }
        if self.pairs.len() >= MAX_FIELDS && chosen.is_none() {
            self.dropped += 1;
            return;
        }
        if let Some(t) = chosen {
            self.slot[t.index()] = Some(self.pairs.len());
        }
        self.pairs.push((label, value));
    }
}

/// `2`, `x2`, `2x`, `2 pairs` -> 2. Zero or no number is not a quantity.
fn parse_quantity(v: &str) -> Option<i64> {
    let t = v.trim().trim_start_matches(['x', 'X', '×']).trim_start();
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n: i64 = t[..digits].parse().ok()?;
    (n > 0).then_some(n)
}

/// Builds the order from the primary source, filling gaps from the others
/// in order (embeds, then content).
fn assemble(mut sources: Vec<Found<'_, '_>>, primary: usize) -> Order {
    let order_of_sources: Vec<usize> = std::iter::once(primary)
        .chain((0..sources.len()).filter(|&i| i != primary))
        .collect();

    let mut text: [Option<String>; Target::ALL.len()] = Default::default();
    let mut price = None;
    let mut quantity = None;
    let mut title = None;
    let mut fields = BTreeMap::new();
    let mut dropped = 0;
    for &i in &order_of_sources {
        let src = &mut sources[i];
        dropped += src.dropped;
        price = price.or(src.price);
        quantity = quantity.or(src.quantity);
        if title.is_none() {
            title = src.title.take().map(Cow::into_owned);
        }
        let slot = src.slot;
        for (pi, (label, value)) in std::mem::take(&mut src.pairs).into_iter().enumerate() {
            for (t, s) in slot.iter().enumerate() {
                if *s == Some(pi) && text[t].is_none() {
                    text[t] = Some(value.to_string());
                }
            }
            if fields.contains_key(label.as_ref()) {
                continue;
            }
            if fields.len() < MAX_FIELDS {
                fields.insert(label.into_owned(), value.into_owned());
            } else {
                dropped += 1;
            }
        }
    }
    if dropped > 0 {
        fields.insert(
            limits::TRUNCATED.to_owned(),
            format!("{dropped} more labelled values left out"),
        );
    }
    let mut take = |t: Target| text[t.index()].take();
    Order {
        order_number: take(Target::OrderNumber).unwrap_or_default(),
        product: take(Target::Product),
        amount_cents: price.map(|p: Price<'_>| p.amount_minor),
        currency: price.and_then(|p| p.currency).map(str::to_owned),
        email: take(Target::Email),
        size: take(Target::Size),
        site: take(Target::Site),
        quantity: quantity.unwrap_or(1),
        profile: take(Target::Profile),
        title,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Order, ParseError> {
        OrderParser::default().parse(body.as_bytes())
    }

    #[test]
    fn description_pairs_body() {
        let o = parse(r#"{"embeds":[{"author":{"name":"Test Order 7"},"description":"Product\nTest Product 7\nPrice\n$99.99\nOrder Number\nTEST-7\nEmail\ntest7@example.com"}]}"#)
            .expect("parses");
        assert_eq!(o.order_number, "TEST-7");
        assert_eq!(o.product.as_deref(), Some("Test Product 7"));
        assert_eq!(o.amount_cents, Some(9999));
        assert_eq!(o.currency.as_deref(), Some("USD"));
        assert_eq!(o.email.as_deref(), Some("test7@example.com"));
        assert_eq!(o.quantity, 1);
        assert_eq!(o.title.as_deref(), Some("Test Order 7"));
        assert_eq!(o.fields.len(), 4);
        assert_eq!(o.fields.get("Price").map(String::as_str), Some("$99.99"));
    }

    #[test]
    fn invalid_json_message() {
        let e = parse(r#"{"embeds":[{"description":"Product\nBroken"#).expect_err("invalid");
        assert!(matches!(e, ParseError::InvalidJson(_)));
        assert!(e.to_string().starts_with("invalid JSON: "), "{e}");
        assert!(e.is_permanent());
    }

    #[test]
    fn no_order_number_message() {
        let e = parse(r#"{"content":"hello","embeds":[{"title":"x"}]}"#).expect_err("no order");
        assert_eq!(
            e.to_string(),
            "no order number found (looked for labels \"Order Number\", \"Order\", \"Order #\", \"Order ID\" ... in 1 embed(s) and content)"
        );
        assert!(e.is_permanent());
        let e = parse("[1,2]").expect_err("array");
        assert_eq!(
            e,
            ParseError::NoOrderNumber("body is a JSON array, not an object".into())
        );
        assert!(matches!(parse("{}"), Err(ParseError::NoOrderNumber(_))));
        assert!(matches!(parse("null"), Err(ParseError::NoOrderNumber(_))));
    }

    #[test]
    fn extra_alias_only_match() {
        let body = r#"{"embeds":[{"fields":[{"name":"Bestellnummer","value":"DE-77"},{"name":"Artikel","value":"Samba"}]}]}"#;
        assert!(matches!(parse(body), Err(ParseError::NoOrderNumber(_))));
        let mut extra = BTreeMap::new();
        extra.insert("order_number".to_owned(), vec!["Bestellnummer".to_owned()]);
        extra.insert("product".to_owned(), vec!["Artikel".to_owned()]);
        let p = OrderParser::new(&extra, None).expect("valid config");
        let o = p.parse(body.as_bytes()).expect("parses with alias");
        assert_eq!(o.order_number, "DE-77");
        assert_eq!(o.product.as_deref(), Some("Samba"));
        // The configured label is quoted when it is missing.
        let e = p.parse(br#"{"content":"x"}"#).expect_err("no order");
        assert!(e.to_string().contains("\"Bestellnummer\""), "{e}");
    }

    #[test]
    fn config_errors() {
        let mut extra = BTreeMap::new();
        extra.insert("colour".to_owned(), vec!["Farbe".to_owned()]);
        assert_eq!(
            OrderParser::new(&extra, None).expect_err("unknown field"),
            "orders.aliases: unknown field \"colour\"; known: order_number, product, price, email, size, site, quantity, profile"
        );
        for bad in ["US", "USDX", "U$D", "", "ÜSD"] {
            assert!(
                OrderParser::new(&BTreeMap::new(), Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(OrderParser::new(&BTreeMap::new(), Some("eur")).is_ok());
    }

    #[test]
    fn default_currency_applies_to_bare_amounts() {
        let p = OrderParser::new(&BTreeMap::new(), Some("jpy")).expect("valid");
        let o = p
            .parse("{\"content\":\"Order: A-1\\nPrice: 12,000\"}".as_bytes())
            .expect("parses");
        assert_eq!(o.amount_cents, Some(12000));
        assert_eq!(o.currency.as_deref(), Some("JPY"));
        // An explicit symbol beats the default.
        let o = p
            .parse("{\"content\":\"Order: A-1\\nPrice: $5\"}".as_bytes())
            .expect("parses");
        assert_eq!(
            (o.amount_cents, o.currency.as_deref()),
            (Some(500), Some("USD"))
        );
        // Without a default, the amount still parses, currency unknown.
        let o = parse("{\"content\":\"Order: A-1\\nPrice: 5.50\"}").expect("parses");
        assert_eq!((o.amount_cents, o.currency), (Some(550), None));
    }

    #[test]
    fn primary_embed_is_not_overridden() {
        let body = r#"{"embeds":[
            {"title":"Restock!","fields":[{"name":"Product","value":"Other Shoe"},{"name":"Price","value":"$1.00"}]},
            {"title":"Checkout","fields":[{"name":"Product","value":"Real Shoe"},{"name":"Order","value":"R-1"}]}
        ]}"#;
        let o = parse(body).expect("parses");
        assert_eq!(o.order_number, "R-1");
        assert_eq!(o.product.as_deref(), Some("Real Shoe"));
        assert_eq!(o.title.as_deref(), Some("Checkout"));
        // Gaps are filled from the other embed.
        assert_eq!(o.amount_cents, Some(100));
        assert_eq!(
            o.fields.get("Product").map(String::as_str),
            Some("Real Shoe")
        );
    }

    #[test]
    fn non_string_values() {
        let o = parse(r#"{"embeds":[{"fields":[{"name":"Order","value":1001},{"name":"Qty","value":3},{"name":"Size","value":null},{"name":7,"value":"seven"},{"name":"x","value":{"a":1}}]}]}"#)
            .expect("parses");
        assert_eq!(o.order_number, "1001");
        assert_eq!(o.quantity, 3);
        assert_eq!(o.size, None);
        assert_eq!(o.fields.get("7").map(String::as_str), Some("seven"));
    }

    #[test]
    fn details_field_with_lines() {
        let o = parse(r#"{"embeds":[{"fields":[{"name":"\u200b","value":"**Order:** A-9\n**Email:** a@b.c"}]}]}"#)
            .expect("parses");
        assert_eq!(o.order_number, "A-9");
        assert_eq!(o.email.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for body in [
            r#"{"embeds":"x"}"#,
            r#"{"embeds":[1,null,"x",[]]}"#,
            r#"{"embeds":{"description":"Order: A"}}"#,
            r#"{"embeds":[{"fields":"x"}]}"#,
            r#"{"embeds":[{"fields":[1,{"name":"Order"}]}]}"#,
            r#"{"embeds":[{"author":"x","title":5}]}"#,
            r#"{"content":5}"#,
            "",
            "\u{0}",
            "\"Order: 1\"",
        ] {
            let _ = parse(body);
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(&deep), Err(ParseError::InvalidJson(_))));
        let deep_obj = r#"{"a":"#.repeat(10_000);
        assert!(matches!(parse(&deep_obj), Err(ParseError::InvalidJson(_))));
    }

    #[test]
    fn hostile_text_is_linear() {
        // Large enough that a quadratic path takes minutes, not seconds.
        let n = 50_000;
        let cases = [
            ":".repeat(n),
            ":a".repeat(n),
            "a:".repeat(n),
            "<:".repeat(n),
            "<a:x:".repeat(n),
            "```".repeat(n),
            "```\n".repeat(n),
            "Order\n".repeat(n),
            "Mode\n".repeat(n),
            "[".repeat(n),
            "**||__".repeat(n),
            "$1,".repeat(n),
            "é".repeat(n),
            "🎉".repeat(n) + ": x",
        ];
        let p = OrderParser::default();
        for text in cases {
            for body in [
                json_body("content", &text),
                json_body("description", &text),
                json_body("field", &text),
            ] {
                let t = std::time::Instant::now();
                let _ = p.parse(body.as_bytes());
                assert!(
                    t.elapsed().as_secs() < 3,
                    "slow on {:?}...",
                    text.chars().take(6).collect::<String>()
                );
            }
        }
    }

    fn json_body(place: &str, text: &str) -> String {
        let v = match place {
            "content" => serde_json::json!({ "content": text }),
            "description" => serde_json::json!({ "embeds": [{ "description": text }] }),
            _ => serde_json::json!({ "embeds": [{ "fields": [
                { "name": text, "value": text },
                { "name": "Price", "value": text },
            ] }] }),
        };
        v.to_string()
    }

    #[test]
    fn long_values_are_cut_to_their_limits() {
        use crate::work::orders::limits::TRUNCATED;
        let long = "Shoe ".repeat(200_000);
        let body = serde_json::json!({"embeds": [{
            "title": long,
            "description": format!("Order: LIM-1\nProduct: **{long}**"),
            "fields": [{"name": long, "value": "x"}, {"name": "Notes", "value": long}],
        }]});
        let o = parse(&body.to_string()).expect("parses");
        assert_eq!(o.order_number, "LIM-1");
        for kept in [
            o.product.as_deref().unwrap(),
            o.title.as_deref().unwrap(),
            &o.fields["Notes"],
        ] {
            assert!(kept.ends_with(TRUNCATED), "{kept:.40}");
            assert!(kept.len() <= MAX_VALUE_BYTES + TRUNCATED.len());
            assert!(kept.starts_with("Shoe Shoe"), "{kept:.40}");
        }
        let label = o
            .fields
            .keys()
            .find(|k| k.starts_with("Shoe"))
            .expect("the long label");
        assert!(label.ends_with(TRUNCATED) && label.len() <= MAX_LABEL_BYTES + TRUNCATED.len());
        // Within the limit, nothing changes.
        let exact = "y".repeat(MAX_VALUE_BYTES);
        let o = parse(
            &serde_json::json!({"content": format!("Order: A\nProduct: {exact}")}).to_string(),
        )
        .expect("parses");
        assert_eq!(o.product.as_deref(), Some(exact.as_str()));
    }

    #[test]
    fn fields_past_the_limit_are_counted_not_kept() {
        let mut text = String::from("Order: MANY-1\n");
        for i in 0..(MAX_FIELDS + 100) {
            text.push_str(&format!("Label {i}: value {i}\n"));
        }
        text.push_str("Email: last@example.com\n");
        let o = parse(&serde_json::json!({ "content": text }).to_string()).expect("parses");
        // A known field after the limit is still found.
        assert_eq!(o.email.as_deref(), Some("last@example.com"));
        assert_eq!(o.fields.len(), MAX_FIELDS + 1);
        assert_eq!(
            o.fields[crate::work::orders::limits::TRUNCATED],
            "102 more labelled values left out"
        );
        assert_eq!(o.fields["Order"], "MANY-1");
    }

    #[test]
    fn an_order_number_over_its_limit_is_refused_not_cut() {
        let ok = "N".repeat(MAX_ORDER_NUMBER_BYTES);
        assert_eq!(
            parse(&format!(r#"{{"content":"Order: {ok}"}}"#))
                .unwrap()
                .order_number,
            ok
        );
        let long = "N".repeat(MAX_ORDER_NUMBER_BYTES + 1);
        let e = parse(&format!(r#"{{"content":"Order: {long}"}}"#)).expect_err("too long");
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            format!(
                "order number longer than 128 bytes (starts {:?})",
                "N".repeat(32)
            )
        );
        let huge = "N".repeat(1_000_000);
        assert!(matches!(
            parse(&format!(r#"{{"content":"Order: {huge}"}}"#)),
            Err(ParseError::OrderNumberTooLong(_))
        ));
    }

    #[test]
    fn quantity_forms() {
        assert_eq!(parse_quantity("2"), Some(2));
        assert_eq!(parse_quantity("x2"), Some(2));
        assert_eq!(parse_quantity("2x"), Some(2));
        assert_eq!(parse_quantity("3 pairs"), Some(3));
        assert_eq!(parse_quantity("0"), None);
        assert_eq!(parse_quantity("two"), None);
        assert_eq!(parse_quantity("99999999999999999999"), None);
        assert_eq!(parse_quantity("×٣"), None);
    }
}
