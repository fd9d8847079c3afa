//! Every webhook fixture in `tests/fixtures/webhooks/` against its `.expected.json`, through
//! the parser alone (the format is described in the harness's fixture loader). An `invalid`
//! text names the error: `not valid JSON...` -> `ParseError::InvalidJson`,
//! `no order number...` -> `ParseError::NoOrderNumber`.

use std::time::Instant;

use hookvault::testing::orders::{OrderParser, ParseError};
use serde_json::Value;

use crate::harness::{webhook_fixture, webhook_fixtures, Fixture};

#[derive(Debug, PartialEq)]
enum Want {
    InvalidJson,
    NoOrderNumber,
}

fn want_error(name: &str, text: &str) -> Want {
    let t = text.to_ascii_lowercase();
    if t.starts_with("not valid json") || t.starts_with("invalid json") {
        Want::InvalidJson
    } else if t.starts_with("no order number") {
        Want::NoOrderNumber
    } else {
        panic!("{name}: \"invalid\" text must start with \"not valid JSON\" or \"no order number\", got {text:?}")
    }
}

#[test]
fn every_fixture_matches_its_expected_order() {
    let parser = OrderParser::default();
    let all = webhook_fixtures();
    let mut failures = Vec::new();
    for Fixture {
        name,
        body,
        expected,
    } in &all
    {
        let result = parser.parse(body);
        if let Some(invalid) = expected.get("invalid") {
            let want = want_error(name, invalid.as_str().unwrap_or(""));
            match (&want, &result) {
                (Want::InvalidJson, Err(ParseError::InvalidJson(_)))
                | (Want::NoOrderNumber, Err(ParseError::NoOrderNumber(_))) => {
                    let e = result.as_ref().expect_err("error");
                    assert!(e.is_permanent(), "{name}: {e}");
                    assert!(!e.to_string().is_empty());
                }
                _ => failures.push(format!("{name}: wanted {want:?}, got {result:?}")),
            }
            continue;
        }
        let order = match result {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: parse failed: {e}"));
                continue;
            }
        };
        let got = serde_json::to_value(&order).expect("order serialises");
        let Value::Object(want_fields) = &expected else {
            panic!("{name}.expected.json must be an object");
        };
        for (key, want) in want_fields {
            match got.get(key) {
                Some(g) if g == want => {}
                Some(g) => failures.push(format!("{name}: {key}: want {want}, got {g}")),
                None => failures.push(format!("{name}: {key}: not an Order field")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Rough throughput on the label-then-value description body; run with
/// `cargo test --release --test integration orders_fixtures::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_description_pairs_body() {
    let body = webhook_fixture("description_pairs").body;
    let parser = OrderParser::default();
    let n = 200_000u32;
    let start = Instant::now();
    let mut total = 0i64;
    for _ in 0..n {
        let o = parser
            .parse(std::hint::black_box(&body))
            .expect("the fixture parses");
        total += o.amount_cents.unwrap_or(0);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, 9999 * i64::from(n));
    println!(
        "parsed {n} orders in {secs:.3}s: {:.0} orders/s ({:.2} us/order)",
        f64::from(n) / secs,
        secs * 1e6 / f64::from(n)
    );
}
