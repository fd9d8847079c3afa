//! Property tests: the order parser is on the worker hot path and sees
//! whatever senders post, so it must never panic — on arbitrary bytes, on
//! arbitrary text in every place a Discord body carries text, and in price
//! parsing. Case counts are kept modest so this runs in seconds in debug.

use hookvault::testing::orders::parse_price;
use hookvault::testing::orders::{markdown, OrderParser, ParseError};
use proptest::prelude::*;
use serde_json::json;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// Text biased towards the characters the parser treats specially, plus
/// arbitrary Unicode (multibyte sequences next to markers are the classic
/// slicing bug).
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "\\PC{0,16}",
        Just("||".to_owned()),
        Just("**".to_owned()),
        Just("__".to_owned()),
        Just("*".to_owned()),
        Just("_".to_owned()),
        Just("`".to_owned()),
        Just("```".to_owned()),
        Just("~~".to_owned()),
        Just("[".to_owned()),
        Just("](".to_owned()),
        Just(")".to_owned()),
        Just(":".to_owned()),
        Just(":tada:".to_owned()),
        Just("<:e:1>".to_owned()),
        Just("<a:".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\\".to_owned()),
        Just("Order Number".to_owned()),
        Just("Order: ".to_owned()),
        Just("Price".to_owned()),
        Just("$1,299.99".to_owned()),
        Just("€".to_owned()),
        Just("¥".to_owned()),
        Just("CA$".to_owned()),
        Just(".-".to_owned()),
        Just("é".to_owned()),
        Just("🎉".to_owned()),
        Just("\u{202f}".to_owned()),
        "[0-9.,' ]{0,12}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn field() -> impl Strategy<Value = serde_json::Value> {
    (tricky_text(), tricky_text(), any::<i64>(), any::<u8>()).prop_map(|(name, value, n, pick)| {
        match pick % 4 {
            0 => json!({"name": name, "value": value}),
            1 => json!({"name": name, "value": n}),
            2 => json!({"name": n, "value": value, "inline": true}),
            _ => json!({"name": name, "value": null}),
        }
    })
}

fn embed() -> impl Strategy<Value = serde_json::Value> {
    (
        tricky_text(),
        tricky_text(),
        tricky_text(),
        prop::collection::vec(field(), 0..5),
    )
        .prop_map(|(title, description, author, fields)| {
            json!({
                "title": title,
                "description": description,
                "author": {"name": author},
                "fields": fields,
                "footer": {"text": "x"},
            })
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = OrderParser::default().parse(&body);
    }

    #[test]
    fn parse_never_panics_on_discord_shaped_json(
        content in tricky_text(),
        embeds in prop::collection::vec(embed(), 0..3),
    ) {
        let body = json!({"content": content, "username": "Refract", "embeds": embeds});
        let bytes = serde_json::to_vec(&body).expect("serialise");
        match OrderParser::default().parse(&bytes) {
            Ok(order) => prop_assert!(!order.order_number.is_empty()),
            Err(e) => prop_assert!(matches!(e, ParseError::NoOrderNumber(_)), "{e}"),
        }
    }

    #[test]
    fn labelled_order_number_is_always_found(number in "[A-Za-z0-9#-]{1,20}", noise in tricky_text()) {
        let body = json!({"embeds": [{"description": format!("{noise}\n\nOrder Number: {number}")}]});
        let bytes = serde_json::to_vec(&body).expect("serialise");
        let order = OrderParser::default().parse(&bytes);
        prop_assert!(order.is_ok(), "{order:?}");
    }

    #[test]
    fn price_never_panics(s in tricky_text(), default in prop::option::of("[A-Z]{3}")) {
        let _ = parse_price(&s, default.as_deref());
    }

    #[test]
    fn price_never_panics_on_any_string(s in any::<String>()) {
        let _ = parse_price(&s, None);
        let _ = parse_price(&s, Some("JPY"));
        let _ = parse_price(&s, Some("KWD"));
    }

    #[test]
    fn plain_dollar_amounts_round_trip(whole in 0i64..10_000_000, cents in 0i64..100) {
        let s = format!("${whole}.{cents:02}");
        let p = parse_price(&s, None).expect("parses");
        prop_assert_eq!(p.amount_minor, whole * 100 + cents);
        prop_assert_eq!(p.currency, Some("USD"));
    }

    #[test]
    fn markdown_clean_never_panics(s in tricky_text()) {
        let _ = markdown::clean(&s);
    }
}
