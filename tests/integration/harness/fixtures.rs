//! Test inputs: the webhook fixtures in `tests/fixtures/webhooks/` (read only here) and
//! generated order bodies.
//!
//! A fixture is `NAME.json` (the body as a sender posts it) with `NAME.expected.json` next to
//! it: the order fields that must come out of it (fields not listed are free), or
//! `{"invalid": "..."}` for a body that must end in dead letters; the text says which error:
//! `not valid JSON...` or `no order number...`. New fixtures are picked up automatically.

use std::path::PathBuf;

use serde_json::Value;

/// One webhook body and what must become of it.
pub struct Fixture {
    /// The file name without `.json`.
    pub name: String,
    pub body: Vec<u8>,
    pub expected: Value,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks")
}

/// One fixture by name (without `.json`).
pub fn webhook_fixture(name: &str) -> Fixture {
    let dir = fixture_dir();
    let body = std::fs::read(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("fixture {name}.json: {e}"));
    let expected_path = dir.join(format!("{name}.expected.json"));
    assert!(
        expected_path.exists(),
        "fixture {name} has no {name}.expected.json"
    );
    let expected = serde_json::from_slice(&std::fs::read(&expected_path).expect("read expected"))
        .unwrap_or_else(|e| panic!("{name}.expected.json is not JSON: {e}"));
    Fixture {
        name: name.to_owned(),
        body,
        expected,
    }
}

/// Every fixture, sorted by name. Panics when there are fewer than eight (a test over them
/// would pass vacuously) or when one lacks its expected file.
pub fn webhook_fixtures() -> Vec<Fixture> {
    let dir = fixture_dir();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixture dir readable") {
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
        names.push(name.to_owned());
    }
    names.sort();
    assert!(
        names.len() >= 8,
        "only {} fixtures in {}: a test over them would pass vacuously",
        names.len(),
        dir.display()
    );
    names.iter().map(|n| webhook_fixture(n)).collect()
}

/// A Discord order body in the label-then-value description form (`Product`, `Price`,
/// `Order Number`, `Email`), with a unique order number `TEST-{n}` and price $99.99.
pub fn order_body(n: u64) -> String {
    format!(
        r#"{{"embeds":[{{"author":{{"name":"Test Order {n}"}},"description":"Product\nTest Product {n}\nPrice\n$99.99\nOrder Number\nTEST-{n}\nEmail\ntest{n}@example.com"}}]}}"#
    )
}
