//! The server against its own OpenAPI document, as a client generated from that document
//! would see it: schemathesis (from PyPI) reads `/openapi.json` of the real binary and sends
//! generated requests with every check on (status codes, schemas, content types, negative
//! data, authentication, stateful sequences). Zero failures are required, once with no admin
//! token (loopback clients are trusted) and once with `server.admin_token` set and sent.
//!
//! Bounded: a fixed seed and a fixed number of examples per operation, so a run takes about a
//! minute in a debug build. A harder run by hand: `SCHEMATHESIS_MAX_EXAMPLES=500
//! SCHEMATHESIS_SEED=7` (any seed: each finds other inputs). `SCHEMATHESIS_BIN` names the `st` binary (`.ci/run` installs it
//! into a virtualenv and sets it); otherwise `st` is looked up on `PATH`. Without it the test
//! skips with a note, except under `CI=true` ([`harness::require`](crate::harness::require)).
//! Run them alone with `cargo test --test integration schemathesis:: -- --nocapture`.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{require, tool, Binary, Hookvault};

/// Examples per operation and phase; with 20 operations about 1,000 requests per run.
const MAX_EXAMPLES: &str = "50";
/// The seed of the normal run: the same inputs every time.
const SEED: &str = "1";

/// `name` from the environment, else `default`: for a harder run by hand.
fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The real binary with short backoffs and quiet logs; `token` as `server.admin_token`, given
/// through the environment.
fn server(token: Option<&str>) -> Binary {
    let mut hv = Hookvault::new().settings(|s| {
        s.queue.backoff_base_ms = 20;
        s.queue.backoff_max_ms = 100;
        s.log.level = "warn".into();
        // Sources with a signature and with a token, so their paths (and 401s) are exercised.
        s.sources = vec![
            toml::from_str("name = \"orders\"").unwrap(),
            toml::from_str("name = \"gh\"\nverify = \"github\"\nsecrets = [\"s\"]").unwrap(),
            toml::from_str("name = \"tok\"\ntoken = \"t0k\"").unwrap(),
        ];
    });
    if let Some(token) = token {
        hv = hv.env("HOOKVAULT_SERVER_ADMIN_TOKEN", token);
    }
    hv.spawn()
}

/// Runs schemathesis against `server` with `headers` on every request and asserts it found
/// nothing; prints its summary either way (the figures for the docs).
fn run_schemathesis(label: &str, server: &Binary, headers: &[&str]) {
    let st = tool("SCHEMATHESIS_BIN", &["st"]);
    if !require(
        &[&st],
        "pip install schemathesis into a virtualenv; or set SCHEMATHESIS_BIN",
    ) {
        return;
    }
    // Its reports and caches go to a temp dir, not the working tree.
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&st);
    cmd.arg("run")
        .arg(format!("{}/openapi.json", server.http.base))
        .args(["--checks", "all", "--max-examples"])
        .arg(setting("SCHEMATHESIS_MAX_EXAMPLES", MAX_EXAMPLES))
        .arg("--seed")
        .arg(setting("SCHEMATHESIS_SEED", SEED))
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "10", "--no-color"])
        .current_dir(work.path())
        .stdin(Stdio::null());
    for h in headers {
        cmd.args(["--header", h]);
    }
    let started = Instant::now();
    let out = cmd.output().expect("run schemathesis");
    let took = started.elapsed();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let cases = text
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or("?")
        .trim()
        .to_string();
    let closing = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    println!("schemathesis {label}: {cases}; {closing} ({took:.1?})");
    assert!(
        out.status.success(),
        "schemathesis {label} found failures (exit {:?}):\n{text}",
        out.status.code()
    );
}

#[test]
fn openapi_agreement_without_a_token_loopback_trust() {
    let server = server(None);
    run_schemathesis("without a token (loopback trust)", &server, &[]);
}

#[test]
fn openapi_agreement_with_the_admin_token() {
    // A numeric token from the environment is a token (a string key stays a string).
    let token = "12345678901234";
    let server = server(Some(token));
    let auth = format!("Authorization: Bearer {token}");
    run_schemathesis("with the admin token", &server, &[&auth]);
}
