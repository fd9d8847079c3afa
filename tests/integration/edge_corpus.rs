//! The hostile corpus (harness::hostile) against hookvault's own port in both edge modes,
//! and what one connection or many must never do: stop ingest, strand requests, or make a
//! stop blame the sender.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::harness::hostile::{self, Edge, INGEST};
use crate::harness::{run_cli, Binary, Hookvault, Http};

fn addr(http: &Http) -> SocketAddr {
    http.base.trim_start_matches("http://").parse().unwrap()
}

fn spawn(edge: &'static str, tweak: impl FnOnce(&mut hookvault::Settings) + 'static) -> Binary {
    Hookvault::new()
        .settings(move |c| {
            c.server.edge = edge.into();
            c.server.idle_timeout_s = 3;
            c.server.body_timeout_s = 3;
            tweak(c);
        })
        .spawn()
}

fn run(edge: Edge, name: &'static str) {
    let hv = spawn(name, |_| {});
    let target = addr(&hv.http);
    let failures = hostile::run_corpus(&hostile::Target {
        edge,
        connect: &|| hostile::tcp(target, Duration::from_secs(5)),
        pid: hv.pid(),
        admin: &hv.http,
        ingest: &|| {
            hv.http
                .ingest("{\"content\":\"after a hostile request\"}")
                .status
        },
    });
    assert!(failures.is_empty(), "{name} mode:\n{}", failures.join("\n"));
}

#[test]
fn the_hostile_corpus_in_gate_mode() {
    run(Edge::Gate, "gate");
}

#[test]
fn the_hostile_corpus_in_direct_mode() {
    run(Edge::Direct, "direct");
}

fn webhook_request(close: bool) -> Vec<u8> {
    let body = "{\"content\":\"burst\"}";
    format!(
        "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// Reads one answer's status line off a kept-alive connection.
fn first_status(conn: &mut TcpStream) -> Result<u16, String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 256];
    let mut ended = String::from("closed");
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(0) => break,
            Err(e) => {
                ended = format!("read: {:?}", e.kind());
                break;
            }
            Ok(n) => got.extend_from_slice(&byte[..n]),
        }
    }
    hostile::statuses(&got)
        .first()
        .copied()
        .ok_or_else(|| format!("no status ({ended} after {} bytes)", got.len()))
}

/// 1,000 connections at once, each sending one webhook and keeping its connection open until
/// every one has its answer: every one is answered (2xx, or 503 beyond the connection cap).
/// A request tiny_http's pool strands waits until some connection closes, and none does
/// until all are answered, so only the stall guard's rescue answers it. How long the slowest
/// took is printed (a figure for docs/performance.md; on an idle machine it is well under 2 s).
fn burst(edge: &'static str) {
    let hv = spawn(edge, |c| c.server.max_connections = 300);
    let target = addr(&hv.http);
    let n = 1000;
    let start = Arc::new(Barrier::new(n));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let give_up = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, answered) = (start.clone(), answered.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let conn = TcpStream::connect(target);
                    start.wait();
                    let mut conn = conn.map_err(|e| format!("connect: {:?}", e.kind()))?;
                    let sent = Instant::now();
                    conn.set_read_timeout(Some(Duration::from_secs(30)))
                        .unwrap();
                    conn.write_all(&webhook_request(false))
                        .map_err(|e| format!("write: {:?}", e.kind()))?;
                    let status = first_status(&mut conn)?;
                    let took = sent.elapsed();
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    while answered.load(std::sync::atomic::Ordering::SeqCst) < n
                        && Instant::now() < give_up
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Ok::<_, String>((status, took))
                })
                .unwrap()
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Why each unanswered connection went unanswered, counted by reason.
    let mut unanswered = std::collections::BTreeMap::<&str, usize>::new();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        *unanswered.entry(e.as_str()).or_default() += 1;
    }
    let wrong: Vec<_> = results
        .iter()
        .flatten()
        .filter(|(s, _)| *s != 200 && *s != 503)
        .collect();
    assert!(
        unanswered.is_empty(),
        "{edge}: of {n}, these got no answer: {unanswered:?}"
    );
    assert!(wrong.is_empty(), "{edge}: {wrong:?}");
    let slowest = results.iter().flatten().map(|(_, t)| *t).max().unwrap();
    let refused = results.iter().flatten().filter(|(s, _)| *s == 503).count();
    eprintln!(
        "FIGURE burst {edge}: {n} connections, slowest answer {slowest:?}, {refused} answered 503"
    );
    assert_eq!(hv.http.ingest("{}").status, 200);
}

#[test]
fn a_burst_of_1000_connections_is_answered_in_gate_mode() {
    burst("gate");
}

#[test]
fn a_burst_of_1000_connections_is_answered_in_direct_mode() {
    burst("direct");
}

#[test]
fn a_client_past_max_connections_gets_503_with_retry_after() {
    let hv = spawn("gate", |c| c.server.max_connections = 4);
    let target = addr(&hv.http);
    // After the listener watchdog's first check, which is a connection too.
    std::thread::sleep(Duration::from_millis(500));
    let held: Vec<_> = (0..4)
        .map(|_| TcpStream::connect(target).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(target).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = extra.read_to_end(&mut bytes);
    let answer = String::from_utf8_lossy(&bytes);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(
        answer.contains("Retry-After: 1\r\n") || answer.contains("Retry-After: 2\r\n"),
        "{answer:?}"
    );
    assert!(answer.contains("too_many_connections"), "{answer:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hv.http.ingest("{}").status, 200);
}

#[test]
fn a_backlog_that_is_never_read_is_cut_off_without_growing_memory() {
    let hv = spawn("gate", |_| {});
    let target = addr(&hv.http);
    let before = hostile::rss_kib(hv.pid());
    let mut conn = TcpStream::connect(target).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let one = b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let backlog = one.repeat((21 << 20) / one.len());
    let writer = std::thread::spawn(move || {
        let _ = conn.write_all(&backlog);
        conn
    });
    // Meanwhile ingest keeps working.
    for _ in 0..5 {
        assert_eq!(hv.http.ingest("{}").status, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    let conn = writer.join().unwrap();
    let grown = hostile::rss_kib(hv.pid()).saturating_sub(before);
    assert!(
        grown < hostile::MAX_RSS_GROWTH_KIB,
        "RSS grew by {grown} KiB"
    );
    drop(conn);
    assert_eq!(hv.http.ingest("{}").status, 200);
}

#[test]
fn a_body_cut_by_sigterm_gets_503_with_retry_after() {
    let mut hv = spawn("gate", |c| c.server.body_timeout_s = 30);
    let mut conn = TcpStream::connect(addr(&hv.http)).unwrap();
    conn.write_all(
        format!(
            "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{{\"a\":"
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    hv.sigterm();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("Retry-After:"), "{answer:?}");
    assert!(answer.contains("shutting_down"), "{answer:?}");
    let status = hv.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn direct_mode_answers_a_new_client_while_32_keep_alive_clients_are_busy() {
    let hv = spawn("direct", |_| {});
    let target = addr(&hv.http);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..32)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(target).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    conn.write_all(&webhook_request(false)).unwrap();
                    let mut buf = [0u8; 1024];
                    let n = conn.read(&mut buf).unwrap();
                    assert!(n > 0);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        let mut conn = TcpStream::connect(target).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        conn.write_all(&webhook_request(true)).unwrap();
        assert_eq!(
            first_status(&mut conn),
            Ok(200),
            "a new client waited over 1 s"
        );
        let _ = conn.shutdown(Shutdown::Both);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
}

#[test]
fn check_config_names_the_effective_edge_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    for (listen, edge, shown) in [
        ("127.0.0.1:8001", "auto", "effective edge mode: direct"),
        ("0.0.0.0:8001", "auto", "effective edge mode: gate"),
        ("127.0.0.1:8001", "gate", "effective edge mode: gate"),
    ] {
        std::fs::write(
            &file,
            format!("[server]\nlisten = \"{listen}\"\nedge = \"{edge}\"\n"),
        )
        .unwrap();
        let out = run_cli(&["check-config", "--config", file.to_str().unwrap()], &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(shown),
            "{listen} {edge}: {text}"
        );
    }
    std::fs::write(&file, "[server]\nedge = \"proxy\"\n").unwrap();
    let out = run_cli(&["check-config", "--config", file.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.edge"));
}

#[test]
fn gate_mode_keeps_a_connection_across_streamed_head_and_plain_answers() {
    // The gate reads each of tiny_http's answers by its framing (a chunked CSV export, a HEAD
    // answer without a body, a plain one) and keeps both connections for the next request.
    let hv = spawn("gate", |_| {});
    assert_eq!(hv.http.ingest(&crate::harness::order_body(7)).status, 200);
    let mut conn = TcpStream::connect(addr(&hv.http)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let get = |path: &str, method: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
    };
    let requests = [
        get("/api/v2/orders.csv", "GET"),
        get("/healthz", "HEAD"),
        get("/api/v2/webhooks/queue/stats", "GET"),
        [
            get("/healthz", "GET"),
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
        ]
        .concat(),
    ];
    let mut all = Vec::new();
    for request in &requests {
        conn.write_all(request).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let mut buf = vec![0u8; 256 * 1024];
        let n = conn.read(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    all.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&all);
    assert_eq!(hostile::statuses(&all), [200, 200, 200, 200, 200], "{text}");
    assert!(text.contains("Transfer-Encoding: chunked"), "{text}");
    assert!(
        text.contains("Connection: close"),
        "the last answer says so: {text}"
    );
}
