//! Request bodies: unique generated orders (default), one fixed body, or fixture replay.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the server is expected to do with a body once it has acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Must end `processed`.
    Processed,
    /// Must end `dead` (or `discarded`): a body the fixtures mark `{"invalid": ...}`.
    Dead,
}

/// Where bodies come from, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PayloadSpec {
    /// Unique Discord order bodies ([`order_body`]), order number `LT-<run id>-<seq>`.
    #[default]
    Generated,
    /// The same file's bytes every time (`--body FILE`).
    Body(PathBuf),
    /// Every `*.json` (not `*.expected.json`) in a directory, round-robin (`--fixtures DIR`).
    Fixtures(PathBuf),
}

/// One replayable body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    pub name: String,
    pub body: Vec<u8>,
    pub expect: Expect,
}

/// The bodies of one run.
#[derive(Debug, Clone)]
pub struct Payloads {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Generated { run_id: String },
    Replay(Vec<Fixture>),
}

impl Payloads {
    /// Unique generated orders for run `run_id`.
    pub fn generated(run_id: &str) -> Payloads {
        Payloads {
            kind: Kind::Generated {
                run_id: run_id.to_string(),
            },
        }
    }

    /// Round-robin over `fixtures` (one entry = the same body every time).
    pub fn replay(fixtures: Vec<Fixture>) -> Result<Payloads, String> {
        if fixtures.is_empty() {
            return Err("no payloads to replay".to_string());
        }
        Ok(Payloads {
            kind: Kind::Replay(fixtures),
        })
    }

    /// Builds the payloads a spec asks for.
    pub fn load(spec: &PayloadSpec, run_id: &str) -> Result<Payloads, String> {
        match spec {
            PayloadSpec::Generated => Ok(Payloads::generated(run_id)),
            PayloadSpec::Body(path) => Payloads::replay(vec![load_fixture(path)?]),
            PayloadSpec::Fixtures(dir) => {
                let fixtures = load_fixture_dir(dir)?;
                if fixtures.is_empty() {
                    return Err(format!(
                        "--fixtures {}: no *.json files (other than *.expected.json) in it",
                        dir.display()
                    ));
                }
                Payloads::replay(fixtures)
            }
        }
    }

    /// The body for the `seq`-th request and what should become of it.
    pub fn get(&self, seq: u64) -> (Cow<'_, [u8]>, Expect) {
        match &self.kind {
            Kind::Generated { run_id } => (
                Cow::Owned(order_body(run_id, seq).into_bytes()),
                Expect::Processed,
            ),
            Kind::Replay(fixtures) => {
                let f = &fixtures[(seq % fixtures.len() as u64) as usize];
                (Cow::Borrowed(&f.body), f.expect)
            }
        }
    }

    /// Names the `seq`-th body: its order number, or the fixture file it came from.
    pub fn label(&self, seq: u64) -> String {
        match &self.kind {
            Kind::Generated { run_id } => format!("order {}", order_number(run_id, seq)),
            Kind::Replay(fixtures) => fixtures[(seq % fixtures.len() as u64) as usize]
                .name
                .clone(),
        }
    }

    /// True when bodies are generated (every one distinct, every one must be processed).
    pub fn is_generated(&self) -> bool {
        matches!(self.kind, Kind::Generated { .. })
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Generated { run_id } => format!("generated orders LT-{run_id}-<seq>"),
            Kind::Replay(f) if f.len() == 1 => format!("fixed body {}", f[0].name),
            Kind::Replay(f) => {
                let dead = f.iter().filter(|x| x.expect == Expect::Dead).count();
                format!("{} fixtures round-robin ({dead} expected dead)", f.len())
            }
        }
    }
}

/// A run id unique enough to keep order numbers of different runs apart: base-36 of the wall
/// clock in microseconds mixed with the process id.
pub fn new_run_id() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mixed = micros ^ (u64::from(std::process::id()) << 40);
    to_base36(mixed)
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The order number of the `seq`-th generated body of run `run_id`.
pub fn order_number(run_id: &str, seq: u64) -> String {
    format!("LT-{run_id}-{seq}")
}

/// A Discord webhook body with a unique order number: one embed whose description holds label
/// and value on alternate lines (`Product`, `Price`, `Order Number`, `Email`), the form of
/// `tests/fixtures/webhooks/description_pairs.json`.
pub fn order_body(run_id: &str, seq: u64) -> String {
    let mut description = String::with_capacity(128);
    let _ = write!(
        description,
        "Product\nTest Product {seq}\nPrice\n$99.99\nOrder Number\n{}\nEmail\ntest{seq}@example.com",
        order_number(run_id, seq)
    );
    serde_json::json!({
        "embeds": [{
            "author": {"name": format!("Test Order {seq}")},
            "description": description,
        }]
    })
    .to_string()
}

/// Loads one body; its expectation comes from a sibling `NAME.expected.json` when there is one.
pub fn load_fixture(path: &Path) -> Result<Fixture, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let expect = expectation_for(path)?;
    Ok(Fixture {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        body,
        expect,
    })
}

/// Every `*.json` but `*.expected.json` in `dir`, sorted by name.
pub fn load_fixture_dir(dir: &Path) -> Result<Vec<Fixture>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_file() && name.ends_with(".json") && !name.ends_with(".expected.json") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load_fixture(p)).collect()
}

/// `Dead` when `NAME.expected.json` next to `NAME.json` holds an `"invalid"` key.
fn expectation_for(path: &Path) -> Result<Expect, String> {
    let Some(stem) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
    else {
        return Ok(Expect::Processed);
    };
    let expected = path.with_file_name(format!("{stem}.expected.json"));
    if !expected.is_file() {
        return Ok(Expect::Processed);
    }
    let text = std::fs::read_to_string(&expected)
        .map_err(|e| format!("cannot read {}: {e}", expected.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", expected.display()))?;
    Ok(if value.get("invalid").is_some() {
        Expect::Dead
    } else {
        Expect::Processed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_bodies_are_unique_and_in_the_description_pairs_form() {
        let p = Payloads::generated("RUN1");
        let mut seen = HashSet::new();
        for seq in 0..1000 {
            let (body, expect) = p.get(seq);
            assert_eq!(expect, Expect::Processed);
            assert!(seen.insert(body.to_vec()), "duplicate body at {seq}");
        }
        let (body, _) = p.get(7);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["embeds"][0]["author"]["name"], "Test Order 7");
        assert_eq!(
            v["embeds"][0]["description"],
            "Product\nTest Product 7\nPrice\n$99.99\nOrder Number\nLT-RUN1-7\nEmail\ntest7@example.com"
        );
    }

    #[test]
    fn order_numbers_differ_between_runs() {
        assert_ne!(order_body("A", 1), order_body("B", 1));
        let a = new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(a, new_run_id());
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn base36() {
        assert_eq!(to_base36(0), "0");
        assert_eq!(to_base36(35), "Z");
        assert_eq!(to_base36(36), "10");
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hookvault-loadtest-{name}-{}-{}",
            std::process::id(),
            new_run_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fixtures_skip_expected_files_and_read_expectations() {
        let dir = tempdir("fixtures");
        std::fs::write(dir.join("a_good.json"), b"{\"embeds\":[]}").unwrap();
        std::fs::write(
            dir.join("a_good.expected.json"),
            b"{\"order_number\":\"X\"}",
        )
        .unwrap();
        std::fs::write(dir.join("b_bad.json"), b"{broken").unwrap();
        std::fs::write(dir.join("b_bad.expected.json"), b"{\"invalid\":\"nope\"}").unwrap();
        std::fs::write(dir.join("c_plain.json"), b"{}").unwrap();
        std::fs::write(dir.join("notes.md"), b"ignore me").unwrap();
        let p = Payloads::load(&PayloadSpec::Fixtures(dir.clone()), "R").unwrap();
        let got: Vec<(Vec<u8>, Expect)> = (0..4)
            .map(|i| {
                let (b, e) = p.get(i);
                (b.to_vec(), e)
            })
            .collect();
        assert_eq!(got[0], (b"{\"embeds\":[]}".to_vec(), Expect::Processed));
        assert_eq!(got[1], (b"{broken".to_vec(), Expect::Dead));
        assert_eq!(got[2], (b"{}".to_vec(), Expect::Processed));
        assert_eq!(got[3], got[0], "round-robin wraps");
        assert!(p.describe().contains("3 fixtures"));
        assert_eq!(p.label(4), "b_bad.json");
        assert_eq!(Payloads::generated("R").label(3), "order LT-R-3");
        assert!(!p.is_generated());

        let single = Payloads::load(&PayloadSpec::Body(dir.join("b_bad.json")), "R").unwrap();
        assert_eq!(single.get(5).1, Expect::Dead);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_fixtures_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/webhooks");
        if !dir.is_dir() {
            return;
        }
        let f = load_fixture_dir(&dir).unwrap();
        assert!(f.len() >= 2);
        let invalid: Vec<&str> = f
            .iter()
            .filter(|x| x.expect == Expect::Dead)
            .map(|x| x.name.as_str())
            .collect();
        assert!(invalid.contains(&"invalid_json.json"), "{invalid:?}");
    }

    #[test]
    fn empty_fixture_dir_is_an_error() {
        let dir = tempdir("empty");
        let err = Payloads::load(&PayloadSpec::Fixtures(dir.clone()), "R").unwrap_err();
        assert!(err.contains("no *.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        let err = Payloads::load(&PayloadSpec::Body(dir.join("x.json")), "R").unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }
}
