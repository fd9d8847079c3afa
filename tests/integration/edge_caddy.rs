//! The shipped `deploy/Caddyfile` is a configuration Caddy accepts, it says what
//! docs/deploy.md says it does, and a real Caddy running it in front of hookvault stops the
//! hostile corpus (harness::hostile). Needs `caddy` (Debian package `caddy`): without it the test
//! skips with a one-line reason, except under `CI=true`, where `.ci/run` installs it
//! ([`harness::require`]).

use std::io::{Read, Write};
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
    // Kept apart from the client's cancellation (a half-closed body would get an empty 200).
    assert_eq!(proxy["flush_interval"], -1);
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

/// hookvault behind the shipped Caddyfile: both processes, and Caddy's plain-HTTP address.
struct Front {
    hv: harness::Binary,
    addr: SocketAddr,
    _caddy: Running,
    _home: tempfile::TempDir,
}

/// Starts hookvault and Caddy in front of it, or `None` without caddy (outside CI).
fn front() -> Option<Front> {
    let caddy = caddy()?;
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
    let caddy = running.unwrap_or_else(|| {
        panic!(
            "caddy did not start:\n{}",
            std::fs::read_to_string(home.path().join("caddy.log")).unwrap_or_default()
        )
    });
    Some(Front {
        hv,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _caddy: caddy,
        _home: home,
    })
}

impl Front {
    fn total_received(&self) -> u64 {
        self.hv.http.stats()["total_received"].as_u64().unwrap()
    }

    fn connect(&self) -> TcpStream {
        let conn = TcpStream::connect(self.addr).expect("connect to caddy");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn
    }

    /// The payload hookvault stored for the `id` of a 2xx answer's JSON.
    fn stored_payload(&self, answer: &Value) -> Value {
        let id = answer["id"].as_i64().expect("an id");
        self.hv
            .http
            .get(&format!("/api/v2/webhooks/logs/{id}"))
            .json["payload"]
            .clone()
    }
}

/// Reads one HTTP answer framed by `Content-Length`: its status and its body as JSON.
fn read_answer(conn: &mut impl Read) -> (u16, Value) {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("an answer's head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head[9..12].parse().expect("a status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("a Content-Length in {head}"));
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("an answer's body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn post_request(body: &[u8], close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut request = format!(
        "POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{connection}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// hookvault's default `server.max_body_bytes`, which the file's `max_size 1MiB` matches.
const MAX_BODY: usize = 1_048_576;

#[test]
fn webhooks_pass_through_caddy_whole() {
    let Some(front) = front() else { return };
    let through = Http::new(front.addr);

    let answer = through.ingest("{\"content\":\"through caddy\"}");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        front.stored_payload(&answer.json),
        "{\"content\":\"through caddy\"}"
    );

    // Exactly max_body_bytes passes whole; one byte more is 413 and not stored.
    let mut body = vec![b' '; MAX_BODY];
    body[..2].copy_from_slice(b"{}");
    let answer = through.post("/api/v2/webhooks/orders", &body);
    assert_eq!(answer.status, 200, "{}", answer.text);
    let stored = front.stored_payload(&answer.json);
    assert_eq!(stored.as_str().map(str::len), Some(MAX_BODY));
    body.push(b' ');
    let too_large = through.post("/api/v2/webhooks/orders", &body);
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(too_large.json["error"], "payload_too_large");

    // A chunked body reaches hookvault whole.
    let mut conn = front.connect();
    conn.write_all(
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        7\r\n{\"conte\r\n10\r\nnt\":\"chunked\"}  \r\n0\r\n\r\n",
    )
    .unwrap();
    let (status, answer) = read_answer(&mut conn);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(front.stored_payload(&answer), "{\"content\":\"chunked\"}  ");

    // Two webhooks on one keep-alive connection, each answered and stored.
    let mut conn = front.connect();
    conn.write_all(&post_request(b"{\"content\":\"first\"}", false))
        .unwrap();
    let (first, answer) = read_answer(&mut conn);
    assert_eq!(first, 200, "{answer}");
    assert_eq!(front.stored_payload(&answer), "{\"content\":\"first\"}");
    conn.write_all(&post_request(b"{\"content\":\"second\"}", true))
        .unwrap();
    let (second, answer) = read_answer(&mut conn);
    assert_eq!(second, 200, "{answer}");
    assert_eq!(front.stored_payload(&answer), "{\"content\":\"second\"}");

    assert_eq!(front.total_received(), 5, "every webhook above, once");
}

/// A client that closes its sending side before its body is complete gets no 2xx, whichever
/// framing it used, and nothing is stored (an empty `200` before `flush_interval -1`).
#[test]
fn a_body_cut_short_by_a_half_close_gets_no_2xx() {
    let Some(front) = front() else { return };
    let connect = || hostile::tcp(front.addr, Duration::from_secs(10));
    let head = "POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/json\r\n";
    let cases = [
        (
            "short Content-Length",
            "Content-Length: 2000\r\n\r\n{\"a\":1}",
        ),
        (
            "chunked, no last chunk",
            "Transfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n",
        ),
        (
            "chunked, cut inside a chunk",
            "Transfer-Encoding: chunked\r\n\r\n10\r\n{\"a\":1}",
        ),
    ];
    for (name, rest) in cases {
        let statuses = hostile::exchange(&connect, format!("{head}{rest}").as_bytes(), true);
        assert!(
            !statuses.iter().any(|s| (200..300).contains(s)),
            "{name}: answered {statuses:?}"
        );
    }
    assert_eq!(front.total_received(), 0, "nothing stored");
}

#[test]
fn the_hostile_corpus_stops_at_caddy() {
    let Some(front) = front() else { return };
    let failures = hostile::run_corpus(&hostile::Target {
        edge: hostile::Edge::Proxy,
        connect: &|| hostile::tcp(front.addr, Duration::from_secs(3)),
        pid: front.hv.pid(),
        admin: &front.hv.http,
        // A new client each time: a pooled keep-alive connection that Caddy has meanwhile
        // closed would fail the POST without saying anything about the hostile request.
        ingest: &|| {
            Http::new(front.addr)
                .ingest("{\"content\":\"after a hostile request\"}")
                .status
        },
    });
    assert!(
        failures.is_empty(),
        "through Caddy:\n{}",
        failures.join("\n")
    );
}
