//! The supported internet-facing deployment, run for real: the shipped
//! `deploy/nginx/hookvault.conf` (its addresses, ports and certificate paths substituted) in a
//! real nginx, in front of the real `hookvault` binary, spoken to over TLS with a self-signed
//! certificate made here. See docs/deploy.md for what the proxy is for.
//!
//! Needs `nginx` and `openssl` (Debian packages of those names): without them the tests skip
//! with a one-line reason, except under `CI=true`, where `.ci/run` installs them and their
//! absence fails ([`harness::require`]).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hookvault::Settings;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

use crate::harness::{self, hostile, Binary, Hookvault};

const INGEST: &str = "/api/v2/webhooks/orders";
/// hookvault's default `server.max_body_bytes`, which the shipped file's
/// `client_max_body_size 1m` matches.
const MAX_BODY: usize = 1_048_576;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Finds a tool on PATH or in the sbin directories (Debian puts nginx in /usr/sbin, which a
/// normal user's PATH lacks).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The tools, or `None` after saying why the test skips. Under `CI=true` a missing tool fails.
fn tools() -> Option<(PathBuf, PathBuf)> {
    if !harness::require(
        &["nginx", "openssl"],
        "the edge tests run the shipped nginx file (Debian: apt-get install nginx openssl)",
    ) {
        return None;
    }
    Some((find_tool("nginx")?, find_tool("openssl")?))
}

/// A loopback port free right now (nginx cannot be told to pick one and report it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A process killed when dropped, so a failing assertion leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// hookvault behind nginx, each on its own ports, in a temp directory.
struct Edge {
    // Dropped in this order: nginx before the hookvault it proxies to.
    _nginx: Running,
    hookvault: Binary,
    /// hookvault's own port, for the admin API (answers loopback clients).
    direct: SocketAddr,
    https_port: u16,
    http_port: u16,
    tls: Arc<ClientConfig>,
    dir: tempfile::TempDir,
    admin: ureq::Agent,
}

impl Edge {
    fn start() -> Option<Edge> {
        Self::start_with(|_| {})
    }

    /// `tweak`: changes to hookvault's settings (the shipped defaults otherwise).
    fn start_with(tweak: impl FnOnce(&mut Settings)) -> Option<Edge> {
        let (nginx, openssl) = tools()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = make_certificate(&openssl, dir.path());
        let hookvault = Hookvault::new().settings(tweak).spawn();
        let direct: SocketAddr = hookvault
            .http
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("hookvault's address");
        // A port taken between free_port() and nginx's bind makes nginx exit: try again.
        for _ in 0..5 {
            let (https_port, http_port) = (free_port(), free_port());
            if let Some(nginx) = start_nginx(&nginx, dir.path(), direct, https_port, http_port) {
                let admin = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                return Some(Edge {
                    _nginx: nginx,
                    hookvault,
                    direct,
                    https_port,
                    http_port,
                    tls,
                    dir,
                    admin,
                });
            }
        }
        panic!(
            "nginx did not start; its log:\n{}",
            fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
    }

    /// A TLS connection to nginx's HTTPS port, from `source` (a loopback address) if given.
    fn connect(&self, source: Option<Ipv4Addr>) -> std::io::Result<Tls> {
        let target = SocketAddr::from(([127, 0, 0, 1], self.https_port));
        let tcp = match source {
            None => TcpStream::connect(target)?,
            Some(ip) => {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                socket.bind(&SocketAddr::from((ip, 0)).into())?;
                socket.connect(&target.into())?;
                socket.into()
            }
        };
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
        let name = ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into());
        let conn = ClientConnection::new(self.tls.clone(), name).map_err(std::io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        // Finish the handshake now, so a caller's first write is request bytes only.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(tls)
    }

    /// One request over HTTPS on a new connection, from `source` if given.
    fn https_from(&self, source: Option<Ipv4Addr>, request: &[u8]) -> Answer {
        let mut tls = self.connect(source).expect("TLS connection to nginx");
        tls.write_all(request).expect("send the request");
        tls.flush().expect("send the request");
        read_answer(&mut tls).expect("an answer from nginx")
    }

    fn https(&self, request: &[u8]) -> Answer {
        self.https_from(None, request)
    }

    fn post(&self, body: &[u8]) -> Answer {
        self.https(&post_request(INGEST, body))
    }

    fn get(&self, path: &str) -> Answer {
        self.https(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// The admin API, straight on hookvault's port.
    fn admin(&self, path: &str) -> Value {
        let mut resp = self
            .admin
            .get(format!("http://{}{path}", self.direct))
            .call()
            .expect("admin API");
        assert_eq!(resp.status(), 200, "GET {path} on hookvault");
        let text = resp.body_mut().read_to_string().expect("admin API body");
        serde_json::from_str(&text).expect("admin API JSON")
    }

    fn total_received(&self) -> u64 {
        self.admin("/api/v2/webhooks/queue/stats")["total_received"]
            .as_u64()
            .expect("total_received")
    }

    fn hookvault_pid(&self) -> u32 {
        self.hookvault.pid()
    }

    fn nginx_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// A self-signed certificate for 127.0.0.1 (P-256: cheap handshakes for the many-client
/// test), and a client configuration that trusts exactly it.
fn make_certificate(openssl: &Path, dir: &Path) -> Arc<ClientConfig> {
    let status = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    let mut roots = RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(dir.join("cert.pem")).expect("read cert.pem");
    roots.add(cert).expect("trust the certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The shipped server block with this test's ports, upstream and files in place of the
/// production ones. Every replaced text must be there: if the file changes, this notices.
fn substituted_config(dir: &Path, upstream: SocketAddr, https_port: u16, http_port: u16) -> String {
    let shipped = include_str!("../../deploy/nginx/hookvault.conf");
    let path = |name: &str| dir.join(name).display().to_string();
    let replacements = [
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{https_port} ssl;"),
        ),
        ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
        // The test machine may have no IPv6; the IPv4 lines above carry the test.
        ("listen [::]:443 ssl;", String::new()),
        ("listen [::]:80;", String::new()),
        ("127.0.0.1:8001", upstream.to_string()),
        ("/etc/hookvault/tls/fullchain.pem", path("cert.pem")),
        ("/etc/hookvault/tls/privkey.pem", path("key.pem")),
        ("/var/log/nginx/hookvault.access.log", path("access.log")),
    ];
    let mut config = shipped.to_string();
    for (from, to) in replacements {
        assert!(
            config.contains(from),
            "deploy/nginx/hookvault.conf no longer contains {from:?}"
        );
        config = config.replace(from, &to);
    }
    config
}

/// Runs nginx in the foreground as one process (so killing it stops all of it), with its
/// pid, logs and temp files in `dir`. `None` when it exits at start (a port was taken).
fn start_nginx(
    nginx: &Path,
    dir: &Path,
    upstream: SocketAddr,
    https_port: u16,
    http_port: u16,
) -> Option<Running> {
    let d = dir.display();
    fs::write(
        dir.join("hookvault.conf"),
        substituted_config(dir, upstream, https_port, http_port),
    )
    .expect("write hookvault.conf");
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 2048; }}\n\
         http {{\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         include {d}/hookvault.conf;\n}}\n"
    );
    fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut running = Running(child);
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if running.0.try_wait().expect("nginx status").is_some() {
            return None;
        }
        // nginx writes its pid file once its sockets are bound: a port answering is not
        // enough, since a port taken by another test's nginx answers too.
        let pid = fs::read_to_string(dir.join("nginx.pid")).unwrap_or_default();
        if pid.trim() == running.0.id().to_string() {
            return Some(running);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nginx did not listen within 10 s");
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one answer: its head, then `Content-Length` bytes of body, or everything until the
/// peer closes when there is no length.
fn read_answer(tls: &mut impl Read) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let mut expected_total = None;
    loop {
        if let Some(total) = expected_total {
            if raw.len() >= total {
                break;
            }
        }
        let n = match tls.read(&mut buf) {
            Ok(n) => n,
            // A peer that closes without a TLS close_notify may still have sent its answer.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if expected_total.is_none() {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                expected_total = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .map(|len| end + 4 + len);
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok(Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

fn post_request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn rss_kib(pid: u32) -> u64 {
    proc_status_field(pid, "VmRSS:")
}

fn thread_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .count()
}

fn proc_status_field(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[test]
fn a_webhook_over_https_is_stored() {
    let Some(edge) = Edge::start() else { return };
    let body = br#"{"content":"edge test","embeds":[]}"#;
    let answer = edge.post(body);
    assert_eq!(answer.status, 200, "{answer:?}");
    let id = answer.json()["id"].as_i64().expect("an id");
    assert_eq!(answer.json()["status"], "queued");

    let stored = edge.admin(&format!("/api/v2/webhooks/logs/{id}"));
    assert_eq!(stored["payload"], std::str::from_utf8(body).unwrap());
    assert_eq!(stored["path"], INGEST);
    assert_eq!(stored["headers"]["x-forwarded-proto"], "https", "{stored}");

    // A chunked body reaches hookvault whole (nginx buffers it and sends a Content-Length).
    let chunked = b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
        Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        7\r\n{\"conte\r\n10\r\nnt\":\"chunked\"}  \r\n0\r\n\r\n";
    let answer = edge.https(chunked);
    assert_eq!(answer.status, 200, "{answer:?}");
    let id = answer.json()["id"].as_i64().expect("an id");
    let stored = edge.admin(&format!("/api/v2/webhooks/logs/{id}"));
    assert_eq!(stored["payload"], "{\"content\":\"chunked\"}  ");

    let health = edge.get("/healthz");
    assert_eq!(health.status, 200, "{health:?}");

    // Plain HTTP is redirected to HTTPS, method kept.
    let mut plain = TcpStream::connect(("127.0.0.1", edge.http_port)).expect("port 80 stand-in");
    plain
        .write_all(b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: hooks.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut text = String::new();
    plain.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 308"), "{text}");
    assert!(
        text.contains("Location: https://hooks.test/api/v2/webhooks/orders"),
        "{text}"
    );
    assert_eq!(edge.total_received(), 2, "the redirect stored nothing");
}

/// The client's address is recorded from nginx's `X-Forwarded-For` once hookvault trusts it.
#[test]
fn the_client_address_is_recorded() {
    let Some(edge) = Edge::start_with(|s| s.server.trusted_proxies = vec!["127.0.0.1".into()])
    else {
        return;
    };
    // The client connects from 127.0.0.7; nginx reaches hookvault from 127.0.0.1.
    let client = Ipv4Addr::new(127, 0, 0, 7);
    let answer = edge.https_from(
        Some(client),
        &post_request(INGEST, b"{\"content\":\"who\"}"),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let id = answer.json()["id"].as_i64().expect("an id");
    let stored = edge.admin(&format!("/api/v2/webhooks/logs/{id}"));
    let recorded = stored["remote_addr"].as_str().unwrap_or_default();
    assert!(
        recorded.starts_with("127.0.0.7"),
        "recorded {recorded:?}, not the client"
    );
}

#[test]
fn a_64_mib_header_never_reaches_hookvault() {
    let Some(edge) = Edge::start() else { return };
    let pid = edge.hookvault_pid();
    let before = rss_kib(pid);

    const HEADER: usize = 64 << 20;
    let mut tls = edge.connect(None).expect("TLS connection");
    tls.write_all(b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
        .unwrap();
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0;
    while sent < HEADER {
        if tls.write_all(&chunk).and_then(|()| tls.flush()).is_err() {
            break;
        }
        sent += chunk.len();
    }
    // nginx refuses the line once it passes its 8 KiB buffer, then reads and discards the
    // rest (a lingering close, so the client gets the answer): no memory grows anywhere.
    // (Should a write fail, the answer may be lost to the reset: the log below still shows it.)
    match read_answer(&mut tls) {
        Ok(answer) => {
            assert_eq!(answer.status, 400, "{answer:?}");
            assert_eq!(answer.json()["error"], "bad_request", "{answer:?}");
        }
        Err(e) => assert!(sent < HEADER, "no answer from nginx: {e}"),
    }
    assert!(
        edge.nginx_log()
            .contains("client sent too long header line"),
        "nginx's log does not show the refusal:\n{}",
        edge.nginx_log()
    );

    let after = rss_kib(pid);
    assert!(
        after < before + 4 * 1024,
        "hookvault's RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(edge.total_received(), 0);
    eprintln!(
        "{} KiB header line: 400 from nginx; hookvault RSS {before} -> {after} KiB",
        sent >> 10
    );
}

#[test]
fn slow_bodies_do_not_delay_a_webhook() {
    let Some(edge) = Edge::start() else { return };
    let pid = edge.hookvault_pid();
    // Warm up (the keep-alive connections to hookvault open), then count its threads.
    for _ in 0..3 {
        assert_eq!(edge.post(b"{\"content\":\"warm\"}").status, 200);
    }
    let threads_before = thread_count(pid);

    // 300 clients, 15 from each of 20 loopback addresses (under the per-address limit of
    // 32), each declaring a 100000-byte body and trickling it.
    const CLIENTS: usize = 300;
    let started = Instant::now();
    let mut slow: Vec<Tls> = (0..CLIENTS)
        .map(|i| {
            let source = Ipv4Addr::new(127, 0, 1, 1 + (i % 20) as u8);
            let mut tls = edge.connect(Some(source)).expect("slow client connection");
            tls.write_all(
                b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"content\":\"",
            )
            .expect("slow client headers");
            tls
        })
        .collect();
    let connect_time = started.elapsed();

    let stop = Arc::new(AtomicBool::new(false));
    let failed_writes = Arc::new(AtomicUsize::new(0));
    let trickler = {
        let (stop, failed_writes) = (stop.clone(), failed_writes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for tls in &mut slow {
                    if tls.write_all(b"x").and_then(|()| tls.flush()).is_err() {
                        failed_writes.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            slow
        })
    };

    let mut slowest = Duration::ZERO;
    let mut most_threads = 0;
    for i in 0..8 {
        std::thread::sleep(Duration::from_millis(400));
        let sent = Instant::now();
        let answer = edge.post(format!("{{\"content\":\"normal {i}\"}}").as_bytes());
        let took = sent.elapsed();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            took < Duration::from_secs(1),
            "a normal webhook took {took:?}"
        );
        slowest = slowest.max(took);
        most_threads = most_threads.max(thread_count(pid));
    }
    stop.store(true, Ordering::SeqCst);
    let slow = trickler.join().expect("trickler");
    assert_eq!(
        failed_writes.load(Ordering::SeqCst),
        0,
        "nginx dropped slow clients it should hold"
    );
    drop(slow);

    // No slow body reached hookvault, and its threads did not follow the client count: at
    // most the 16 connections of max_conns plus the 4 idle ones are open to it.
    assert_eq!(edge.total_received(), 3 + 8);
    assert!(
        most_threads <= threads_before + 20,
        "hookvault went from {threads_before} to {most_threads} threads"
    );
    eprintln!(
        "{CLIENTS} slow clients connected in {connect_time:?}; slowest normal webhook {slowest:?}; \
         hookvault threads {threads_before} -> at most {most_threads}"
    );
}

#[test]
fn one_address_cannot_hold_more_than_32_requests() {
    let Some(edge) = Edge::start() else { return };
    let source = Some(Ipv4Addr::new(127, 0, 2, 1));
    let head =
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{";
    let _held: Vec<Tls> = (0..32)
        .map(|_| {
            let mut tls = edge.connect(source).expect("connection");
            tls.write_all(head).unwrap();
            tls.flush().unwrap();
            tls
        })
        .collect();
    // nginx counts a connection once it has read its request header: wait until a request
    // that stores nothing is refused, so the count is known to be full.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let health = edge.https_from(
            source,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        if health.status == 429 {
            break;
        }
        assert_eq!(health.status, 200, "{health:?}");
        assert!(
            Instant::now() < until,
            "nginx did not count 32 open requests"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = edge.https_from(source, &post_request(INGEST, b"{}"));
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.json()["error"], "too_many_connections");
    assert!(refused.head.contains("Retry-After: 2"), "{}", refused.head);
    // Another address is not affected.
    assert_eq!(edge.post(b"{}").status, 200);
    assert_eq!(edge.total_received(), 1);
}

#[test]
fn admin_paths_answer_404_through_the_proxy() {
    let Some(edge) = Edge::start() else { return };
    for path in [
        "/api/v2/webhooks/queue/stats",
        "/api/v2/webhooks/queue/dead-letters",
        "/api/v2/webhooks/logs",
        "/api/v2/webhooks/logs/1",
        "/api/v2/orders",
        "/api/v2/orders.csv",
        "/dashboard",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/readyz",
        "/ws",
        "/",
    ] {
        let answer = edge.get(path);
        assert_eq!(answer.status, 404, "GET {path} through nginx: {answer:?}");
        assert_eq!(
            answer.json()["error"],
            "not_found",
            "GET {path}: {answer:?}"
        );
    }
    let retry = edge.https(&post_request("/api/v2/webhooks/queue/retry-failed", b""));
    assert_eq!(retry.status, 404, "{retry:?}");
    let websocket = edge.https(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(websocket.status, 404, "{websocket:?}");
    // The same paths do answer on hookvault's own port: the 404s are the proxy's.
    assert_eq!(
        edge.admin("/api/v2/webhooks/queue/stats")["total_received"],
        0
    );
}

#[test]
fn malformed_and_oversized_requests_stop_at_nginx() {
    let Some(edge) = Edge::start() else { return };
    for length in ["-1", "99999999999999999999999", "5x"] {
        let request = format!(
            "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\
             Connection: close\r\n\r\n{{\"content\":\"x\"}}"
        );
        let answer = edge.https(request.as_bytes());
        assert_eq!(answer.status, 400, "Content-Length {length}: {answer:?}");
        assert_eq!(answer.json()["error"], "bad_request");
    }

    // A body that ends before its Content-Length: the client closes its side after 52 bytes.
    let mut tls = edge.connect(None).expect("TLS connection");
    tls.write_all(
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n\
          {\"content\":\"only fifty-two bytes of five thousand\"}",
    )
    .unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    tls.sock.shutdown(Shutdown::Write).unwrap();
    if let Ok(answer) = read_answer(&mut tls) {
        assert!(
            !(200..300).contains(&answer.status),
            "short body: {answer:?}"
        );
    }

    // The body limit is hookvault's: exactly max_body_bytes passes, one byte more is 413.
    let mut body = vec![b' '; MAX_BODY];
    body[..2].copy_from_slice(b"{}");
    assert_eq!(edge.post(&body).status, 200);
    body.push(b' ');
    let too_large = edge.post(&body);
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(too_large.json()["error"], "payload_too_large");

    assert_eq!(
        edge.total_received(),
        1,
        "only the body within the limit is stored"
    );
}

impl hostile::Stream for Tls {
    fn close_write(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

#[test]
fn the_hostile_corpus_stops_at_nginx() {
    let Some(edge) = Edge::start() else { return };
    let admin = harness::Http::new(edge.direct);
    let failures = hostile::run_corpus(&hostile::Target {
        edge: hostile::Edge::Proxy,
        connect: &|| {
            let tls = edge.connect(None)?;
            tls.sock.set_read_timeout(Some(Duration::from_secs(3)))?;
            Ok(Box::new(tls) as Box<dyn hostile::Stream>)
        },
        pid: edge.hookvault_pid(),
        admin: &admin,
        ingest: &|| {
            edge.post(b"{\"content\":\"after a hostile request\"}")
                .status
        },
    });
    assert!(
        failures.is_empty(),
        "through nginx:\n{}\nnginx log:\n{}",
        failures.join("\n"),
        edge.nginx_log()
    );
}

/// The figures in docs/deploy.md: hookvault's exposure directly on its port and behind nginx.
/// A measurement, not a check; run it with
/// `cargo test --release --test integration edge_figures -- --ignored --nocapture`.
#[test]
#[ignore = "measurement for docs/deploy.md; run with --ignored --nocapture"]
fn edge_figures() {
    // RSS under one 64 MiB header line.
    for via_nginx in [false, true] {
        let Some(edge) = Edge::start() else { return };
        let pid = edge.hookvault_pid();
        let before = rss_kib(pid);
        let mut stream: Box<dyn Write> = if via_nginx {
            Box::new(edge.connect(None).expect("TLS"))
        } else {
            Box::new(TcpStream::connect(edge.direct).expect("connect"))
        };
        stream
            .write_all(b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
            .unwrap();
        let chunk = vec![b'a'; 64 << 10];
        let started = Instant::now();
        for _ in 0..1024 {
            if stream.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = stream.flush();
        let sent_in = started.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        let open = rss_kib(pid);
        let peak = proc_status_field(pid, "VmHWM:");
        drop(stream);
        std::thread::sleep(Duration::from_secs(1));
        let closed = rss_kib(pid);
        eprintln!(
            "FIGURE header-64MiB {}: RSS before {before} KiB, with the line sent {open} KiB (+{} MiB), \
             peak {peak} KiB, after close {closed} KiB; sent in {sent_in:?}",
            if via_nginx { "nginx" } else { "direct" },
            (open.saturating_sub(before)) / 1024
        );
    }

    // A normal webhook's latency while 100 clients trickle bodies (1 byte a second into a
    // declared 100000 bytes); 10 s is the longest a normal webhook is waited for.
    for via_nginx in [false, true] {
        let Some(edge) = Edge::start() else { return };
        let head = b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
            Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"content\":\"";
        let mut slow: Vec<Box<dyn Write + Send>> = (0..100)
            .map(|i| {
                let mut s: Box<dyn Write + Send> = if via_nginx {
                    // 10 per address: under the file's limit of 32 per client address.
                    let source = Ipv4Addr::new(127, 0, 1, 1 + (i % 10) as u8);
                    Box::new(edge.connect(Some(source)).expect("TLS"))
                } else {
                    Box::new(TcpStream::connect(edge.direct).expect("connect"))
                };
                s.write_all(head).unwrap();
                s.flush().unwrap();
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let trickler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for s in &mut slow {
                        let _ = s.write_all(b"x").and_then(|()| s.flush());
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                slow
            })
        };
        std::thread::sleep(Duration::from_secs(1));
        let pid = edge.hookvault_pid();
        let (threads, rss) = (thread_count(pid), rss_kib(pid));
        let mut latencies = Vec::new();
        for i in 0..5 {
            let body = format!("{{\"content\":\"normal {i}\"}}");
            let request = post_request(INGEST, body.as_bytes());
            let sent = Instant::now();
            let answer = if via_nginx {
                edge.connect(None).and_then(|mut tls| {
                    tls.write_all(&request)?;
                    tls.flush()?;
                    tls.sock.set_read_timeout(Some(Duration::from_secs(10)))?;
                    read_answer(&mut tls)
                })
            } else {
                TcpStream::connect(edge.direct).and_then(|mut tcp| {
                    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
                    tcp.write_all(&request)?;
                    read_answer(&mut tcp)
                })
            };
            latencies.push(match answer {
                Ok(a) => format!("{} in {:?}", a.status, sent.elapsed()),
                Err(e) => format!("no answer after {:?} ({})", sent.elapsed(), e.kind()),
            });
        }
        stop.store(true, Ordering::SeqCst);
        drop(trickler.join());
        eprintln!(
            "FIGURE trickle-100 {}: hookvault threads {threads}, RSS {rss} KiB; normal webhooks: {}",
            if via_nginx { "nginx" } else { "direct" },
            latencies.join("; ")
        );
    }

    // hookvault's threads under 1,000 idle connections (connected, nothing sent).
    for via_nginx in [false, true] {
        let Some(edge) = Edge::start() else { return };
        let pid = edge.hookvault_pid();
        let target = if via_nginx {
            SocketAddr::from(([127, 0, 0, 1], edge.https_port))
        } else {
            edge.direct
        };
        let before = thread_count(pid);
        let idle: Vec<TcpStream> = (0..1000)
            .map(|_| TcpStream::connect(target).expect("connect"))
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        let during = thread_count(pid);
        let rss = rss_kib(pid);
        let sent = Instant::now();
        let answer = if via_nginx {
            edge.post(b"{\"content\":\"while idle\"}").status
        } else {
            let mut tcp = TcpStream::connect(edge.direct).expect("connect");
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            tcp.write_all(&post_request(INGEST, b"{\"content\":\"while idle\"}"))
                .unwrap();
            read_answer(&mut tcp).map(|a| a.status).unwrap_or(0)
        };
        let took = sent.elapsed();
        drop(idle);
        eprintln!(
            "FIGURE idle-1000 {}: hookvault threads {before} -> {during}, RSS {rss} KiB; \
             a webhook meanwhile: {answer} in {took:?}",
            if via_nginx { "nginx" } else { "direct" }
        );
    }
}
