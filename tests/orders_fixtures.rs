//! Every webhook fixture in `tests/fixtures/webhooks/` against its
//! `.expected.json`. New fixtures are picked up automatically: drop in
//! `NAME.json` + `NAME.expected.json`.
//!
//! An expected file lists the order fields that must match (fields not listed
//! are free), or is `{"invalid": "..."}` for a body that must fail; the text
//! says which error: `not valid JSON...` -> `ParseError::InvalidJson`,
//! `no order number...` -> `ParseError::NoOrderNumber`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hookvault::orders::{OrderParser, ParseError};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
}

/// (name, body path, expected path) for every fixture, sorted by name.
fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = fixture_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).expect("fixture dir readable") {
        let path = entry.expect("dir entry").path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        if name.ends_with(".expected") {
            continue;
        }
        let expected = dir.join(format!("{name}.expected.json"));
        assert!(
            expected.exists(),
            "fixture {name} has no {name}.expected.json"
        );
        out.push((name.to_owned(), path.clone(), expected));
    }
    out.sort();
    out
}

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
    let all = fixtures();
    assert!(
        all.len() >= 8,
        "only {} fixtures in {}: the test would pass vacuously",
        all.len(),
        fixture_dir().display()
    );
    let mut failures = Vec::new();
    for (name, body_path, expected_path) in &all {
        let body = fs::read(body_path).expect("read body");
        let expected: Value =
            serde_json::from_slice(&fs::read(expected_path).expect("read expected"))
                .unwrap_or_else(|e| panic!("{name}.expected.json is not JSON: {e}"));
        let result = parser.parse(&body);
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

/// Rough throughput on the seed body; run with
/// `cargo test --release --test orders_fixtures -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_seed_body() {
    let body = fs::read(fixture_dir().join("seed_description_pairs.json")).expect("seed fixture");
    let parser = OrderParser::default();
    let n = 200_000u32;
    let start = Instant::now();
    let mut total = 0i64;
    for _ in 0..n {
        let o = parser
            .parse(std::hint::black_box(&body))
            .expect("seed parses");
        total += o.amount_cents.unwrap_or(0);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, 9999 * i64::from(n));
    println!(
        "parsed {n} seed orders in {secs:.3}s: {:.0} orders/s ({:.2} us/order)",
        f64::from(n) / secs,
        secs * 1e6 / f64::from(n)
    );
}
