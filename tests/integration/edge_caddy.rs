//! The shipped `deploy/Caddyfile` is a configuration Caddy accepts, it says what
//! docs/deploy.md says it does, and a real Caddy running it in front of hookvault stops the
//! hostile corpus (harness::hostile). Needs `caddy` (Debian package `caddy`): without it the test
//! skips with a one-line reason, except under `CI=true`, where `.ci/run` installs it
//! ([`harness::require`]).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, hostile, Hookvault, Http};

fn caddy() -> Option<PathBuf> {
    if !harness::require(
        &["caddy"],
        "the shipped Caddyfile is checked by caddy itself (Debian: apt-get install caddy)",
    ) {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("caddy"))
        .find(|p| p.is_file())
}

/// Runs caddy with its home, data and config directories in `home`, so it neither reads nor
/// writes the user's.
fn run(caddy: &Path, home: &Path, args: &[&str]) -> Output {
    let caddyfile = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Caddyfile");
    Command::new(caddy)
        .args(args)
        .args(["--config", caddyfile, "--adapter", "caddyfile"])
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .output()
        .expect("run caddy")
}

#[test]
fn caddy_validates_the_shipped_caddyfile() {
    let Some(caddy) = caddy() else { return };
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(&caddy, home.path(), &["validate"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "caddy validate failed:\n{log}");
    assert!(
        !log.contains("not formatted"),
        "run `caddy fmt --overwrite deploy/Caddyfile`:\n{log}"
    );
}

#[test]
fn the_caddyfile_routes_only_ingest_and_health_with_the_bounds() {
    let Some(caddy) = caddy() else { return };
    let home = tempfile::tempdir().expect("temp dir");
    let out = run(&caddy, home.path(), &["adapt"]);
    assert!(
        out.status.success(),
        "caddy adapt failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).expect("caddy adapt prints JSON");
    let server = &config["apps"]["http"]["servers"]["srv0"];
    assert_eq!(server["read_header_timeout"], 10_000_000_000u64);
    assert_eq!(server["read_timeout"], 10_000_000_000u64);
    assert_eq!(server["max_header_bytes"], 32 * 1024);

    // Walk every handler; collect what the policy is made of.
    let mut proxies = Vec::new();
    let mut proxied_paths = Vec::new();
    let mut body_limits = Vec::new();
    collect(server, &mut proxies, &mut proxied_paths, &mut body_limits);

    assert_eq!(proxies.len(), 1, "exactly one reverse_proxy: {proxies:?}");
    let proxy = &proxies[0];
    assert_eq!(proxy["upstreams"][0]["dial"], "127.0.0.1:8001");
    assert_eq!(proxy["buffer_requests"], true);
    assert_eq!(proxy["max_buffer_size"], 1_048_576);
    assert_eq!(proxy["transport"]["max_conns_per_host"], 16);
    assert_eq!(
        proxied_paths,
        vec![vec![
            "/api/v2/webhooks/orders".to_string(),
            "/healthz".to_string()
        ]]
    );
    assert_eq!(body_limits, vec![1_048_576]);
}

/// Finds reverse_proxy handlers, the path matchers of the routes holding them, and
/// request_body limits, anywhere in the adapted configuration.
fn collect(
    node: &Value,
    proxies: &mut Vec<Value>,
    paths: &mut Vec<Vec<String>>,
    limits: &mut Vec<u64>,
) {
    match node {
        Value::Object(map) => {
            if map.get("handler").and_then(Value::as_str) == Some("reverse_proxy") {
                proxies.push(node.clone());
            }
            if map.get("handler").and_then(Value::as_str) == Some("request_body") {
                limits.extend(map.get("max_size").and_then(Value::as_u64));
            }
            if let (Some(matchers), Some(handle)) = (map.get("match"), map.get("handle")) {
                let mut inner = Vec::new();
                collect(handle, &mut inner, &mut Vec::new(), &mut Vec::new());
                if !inner.is_empty() {
                    for m in matchers.as_array().into_iter().flatten() {
                        if let Some(p) = m["path"].as_array() {
                            paths.push(
                                p.iter()
                                    .filter_map(|s| s.as_str().map(str::to_string))
                                    .collect(),
                            );
                        }
                    }
                }
            }
            for value in map.values() {
                collect(value, proxies, paths, limits);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect(v, proxies, paths, limits)),
        _ => {}
    }
}

/// Caddy, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shipped Caddyfile, served on plain HTTP at `127.0.0.1:port` (no certificate here) in front of
/// `upstream`, with Caddy's admin endpoint off (tests run side by side).
fn start_caddy(caddy: &Path, home: &Path, port: u16, upstream: SocketAddr) -> Option<Running> {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Caddyfile")).unwrap();
    let config = shipped
        .replacen("{\n\tservers {", "{\n\tadmin off\n\tservers {", 1)
        // Any Host (the corpus names localhost), on loopback only.
        .replace(
            "hooks.example.com {",
            &format!("http://:{port} {{\n\tbind 127.0.0.1"),
        )
        .replace("127.0.0.1:8001", &upstream.to_string());
    assert!(config.contains("admin off") && !config.contains("hooks.example.com {"));
    let file = home.join("Caddyfile");
    std::fs::write(&file, config).unwrap();
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.join("caddy.log")).unwrap())
        .spawn()
        .expect("run caddy");
    let running = Running(child);
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(running);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn the_hostile_corpus_stops_at_caddy() {
    let Some(caddy) = caddy() else { return };
    let home = tempfile::tempdir().expect("temp dir");
    let hv = Hookvault::new().spawn();
    let upstream: SocketAddr = hv.http.base.trim_start_matches("http://").parse().unwrap();
    let mut running = None;
    let mut port = 0;
    // A port taken between choosing it and Caddy's bind: try another.
    for _ in 0..5 {
        port = harness::free_port();
        running = start_caddy(&caddy, home.path(), port, upstream);
        if running.is_some() {
            break;
        }
    }
    let _caddy = running.unwrap_or_else(|| {
        panic!(
            "caddy did not start:\n{}",
            std::fs::read_to_string(home.path().join("caddy.log")).unwrap_or_default()
        )
    });
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let through = Http::new(front);
    let failures = hostile::run_corpus(&hostile::Target {
        edge: hostile::Edge::Proxy,
        connect: &|| hostile::tcp(front, Duration::from_secs(3)),
        pid: hv.pid(),
        admin: &hv.http,
        ingest: &|| {
            through
                .ingest("{\"content\":\"after a hostile request\"}")
                .status
        },
    });
    // Caddy 2.6.2 (Debian 12) answers an empty `200` to a client that closes its sending side
    // in the middle of a body, without contacting hookvault (docs/deploy.md, "4b. Or Caddy"):
    // nothing is stored, but the sender is told otherwise. Caddy's defect, kept visible here:
    // the one failure allowed, and only in exactly that form.
    let caddy_defect = "a body shorter than its length: answers [200] with 0 stored";
    let failures: Vec<_> = failures.into_iter().filter(|f| f != caddy_defect).collect();
    assert!(
        failures.is_empty(),
        "through Caddy:\n{}",
        failures.join("\n")
    );
}
