//! hookvault's own port meeting hostile clients, no proxy in front: request framing
//! (`Content-Length`, short and empty bodies, chunked, header bytes and size), the body
//! deadline, slow senders beside a normal webhook, a stop with slow clients, and who may reach
//! the admin API (docs/operations.md, "Who may reach the admin API").

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, Hookvault, Http};

const INGEST: &str = "/api/v2/webhooks/orders";

/// hookvault as its own edge, whatever its listen address.
fn gate<'a>() -> Hookvault<'a> {
    Hookvault::new().settings(|c| c.server.edge = "gate".into())
}

fn addr(http: &Http) -> SocketAddr {
    http.base.trim_start_matches("http://").parse().unwrap()
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    json: Value,
}

/// Reads until the server closes (every refusal closes) or 10 s pass.
fn read_raw(conn: &mut TcpStream) -> Raw {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_string(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// Sends `request` on a new connection and reads the answer.
fn raw(http: &Http, request: &[u8]) -> Raw {
    let mut conn = TcpStream::connect(addr(http)).unwrap();
    conn.write_all(request).unwrap();
    read_raw(&mut conn)
}

fn received(http: &Http) -> u64 {
    http.stats()["total_received"].as_u64().unwrap()
}

#[test]
fn a_content_length_that_is_not_a_plain_number_gets_400_and_nothing_is_stored() {
    let s = gate().start();
    for length in [
        "-1",
        "99999999999999999999999",
        "5x",
        "+5",
        "5, 5",
        "0x10",
        "",
    ] {
        let answer = raw(
            &s.http,
            format!(
                "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n\
                 {{\"content\":\"x\"}}"
            )
            .as_bytes(),
        );
        assert_eq!(answer.status, 400, "Content-Length {length:?}: {answer:?}");
        assert_eq!(answer.json["error"], "bad_content_length", "{length:?}");
        // The connection was closed: the body was not read as a second request (read_raw
        // read to the end, and saw one answer only).
        assert_eq!(answer.head.matches("HTTP/1.1").count(), 1, "{answer:?}");
    }
    // Two different lengths, and a length beside a transfer coding, are refused too.
    for extra in [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
    ] {
        let answer = raw(
            &s.http,
            format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n\r\n{{}}   ")
                .as_bytes(),
        );
        assert_eq!(answer.status, 400, "{extra}: {answer:?}");
    }
    assert_eq!(received(&s.http), 0);
}

#[test]
fn a_huge_declared_length_gets_413_and_the_server_lives_on() {
    // tiny_http, dropping a request whose body was not read, allocates the declared length to
    // skip it: this once aborted the whole process.
    let s = gate().start();
    for length in ["99999999999", "18446744073709551615", "1048577"] {
        let answer = raw(
            &s.http,
            format!(
                "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n{{}}"
            )
            .as_bytes(),
        );
        assert_eq!(answer.status, 413, "{length}: {answer:?}");
        assert_eq!(answer.json["error"], "payload_too_large");
    }
    assert_eq!(s.http.ingest("{\"content\":\"still here\"}").status, 200);
    assert_eq!(received(&s.http), 1);
}

#[test]
fn a_body_shorter_than_its_length_is_not_acknowledged() {
    let s = gate().start();
    for declared in [100, 5000] {
        let mut conn = TcpStream::connect(addr(&s.http)).unwrap();
        write!(
            conn,
            "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {declared}\r\n\r\n\
             {{\"content\":\"only fifty-two bytes of five thousand\"}}"
        )
        .unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let answer = read_raw(&mut conn);
        assert!(
            !(200..300).contains(&answer.status),
            "{declared}: {answer:?}"
        );
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(answer.json["error"], "incomplete_body");
    }
    assert_eq!(received(&s.http), 0);
}

#[test]
fn an_empty_webhook_gets_400_empty_body() {
    let s = gate().start();
    for request in [
        format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"),
    ] {
        let answer = raw(&s.http, request.as_bytes());
        assert_eq!(answer.status, 400, "{request:?}: {answer:?}");
        assert_eq!(answer.json["error"], "empty_body");
    }
    assert_eq!(s.http.post(INGEST, b"").status, 400);
    assert_eq!(received(&s.http), 0);
}

#[test]
fn chunked_bodies_are_stored_whole() {
    let s = gate().start();
    let answer = raw(
        &s.http,
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          7\r\n{\"conte\r\n10;ext=1\r\nnt\":\"chunked\"}  \r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let id = answer.json["id"].as_i64().unwrap();
    let stored = s.http.get(&format!("/api/v2/webhooks/logs/{id}")).json;
    assert_eq!(stored["payload"], "{\"content\":\"chunked\"}  ");
    // Over the body limit once decoded: 413.
    let s = gate().settings(|c| c.server.max_body_bytes = 10).start();
    let answer = raw(
        &s.http,
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
          Transfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n6\r\n23456}\r\n0\r\n\r\n",
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    // A chunk size at the top of 64 bits must not wrap the running total past the check.
    let answer = raw(
        &s.http,
        b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
          Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nffffffffffffffff\r\nxx\r\n0\r\n\r\n",
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(received(&s.http), 0);
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let s = gate().start();
    let mut conn = TcpStream::connect(addr(&s.http)).unwrap();
    let one = |n: u32| {
        let body = format!("{{\"content\":\"pipelined {n}\"}}");
        format!(
            "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nIdempotency-Key: p{n}\r\n\r\n{body}",
            body.len()
        )
    };
    conn.write_all(format!("{}{}{}", one(1), one(2), one(1)).as_bytes())
        .unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = {
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut t = String::new();
        let _ = conn.read_to_string(&mut t);
        t
    };
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "200", "200"], "{text}");
    assert!(
        text.contains("\"queued\"") && text.contains("\"duplicate\""),
        "{text}"
    );
    assert_eq!(received(&s.http), 2);
}

#[test]
fn a_header_with_non_ascii_bytes_gets_400() {
    let s = gate().start();
    let mut request =
        format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nX-Name: caf").into_bytes();
    request.extend_from_slice(&[0xc3, 0xa9]);
    request.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
    let answer = raw(&s.http, &request);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.json["error"], "bad_header");
    assert_eq!(received(&s.http), 0);
}

#[test]
fn a_header_over_64_kib_gets_431() {
    let s = gate().start();
    let mut conn = TcpStream::connect(addr(&s.http)).unwrap();
    conn.write_all(format!("POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nX-Big: ").as_bytes())
        .unwrap();
    // Send up to 4 MiB; the gate answers after 64 KiB and closes, so writing may fail.
    let chunk = vec![b'a'; 64 << 10];
    for _ in 0..64 {
        if conn.write_all(&chunk).is_err() {
            break;
        }
    }
    let answer = read_raw(&mut conn);
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(answer.json["error"], "header_too_large");
    assert_eq!(received(&s.http), 0);
}

#[test]
fn a_body_not_complete_within_body_timeout_gets_408() {
    let s = gate().settings(|c| c.server.body_timeout_s = 1).start();
    let mut conn = TcpStream::connect(addr(&s.http)).unwrap();
    write!(
        conn,
        "POST {INGEST} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n{{\"content\":\""
    )
    .unwrap();
    // A byte every 100 ms: never idle, never done.
    let started = Instant::now();
    let mut trickle = conn.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        while trickle.write_all(b"x").is_ok() && started.elapsed() < Duration::from_secs(8) {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let answer = read_raw(&mut conn);
    let took = started.elapsed();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json["error"], "request_timeout");
    assert!(
        answer.json["message"]
            .as_str()
            .unwrap()
            .contains("server.body_timeout_s"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(5), "the 408 came after {took:?}");
    trickler.join().unwrap();
    assert_eq!(received(&s.http), 0);
}

/// Opens `n` connections that each declare a 100000-byte body and send its start.
fn slow_senders(target: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(target).unwrap();
            c.write_all(
                b"POST /api/v2/webhooks/orders HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Length: 100000\r\n\r\n{\"content\":\"",
            )
            .unwrap();
            c
        })
        .collect()
}

#[test]
fn a_webhook_is_answered_within_a_second_while_100_clients_trickle_bodies() {
    // 8 handler threads (the harness's): before the gate, 8 slow senders held them all.
    let s = gate().start();
    let mut slow = slow_senders(addr(&s.http), 100);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        for c in &mut slow {
            c.write_all(b"x").unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        let answer = s.http.ingest(&format!("{{\"content\":\"normal {i}\"}}"));
        let took = sent.elapsed();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            took < Duration::from_secs(1),
            "a normal webhook took {took:?}"
        );
        slowest = slowest.max(took);
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the slow senders must still be sending"
    );
    assert_eq!(received(&s.http), 5);
    eprintln!("100 trickling clients: slowest normal webhook {slowest:?}");
}

#[test]
fn sigterm_exits_in_time_with_slow_clients_connected() {
    let mut s = gate().settings(|c| c.queue.shutdown_timeout_s = 2).spawn();
    let target = addr(&s.http);
    assert_eq!(s.http.ingest("{\"content\":\"before\"}").status, 200);
    let mut slow = slow_senders(target, 20);
    let _idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(target).unwrap())
        .collect();
    let keep_trickling = std::thread::spawn(move || {
        // Until the server is gone (every write fails) or 20 s pass.
        for _ in 0..100 {
            let mut any_open = false;
            for c in &mut slow {
                any_open |= c.write_all(b"x").is_ok();
            }
            if !any_open {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let stopped = Instant::now();
    s.sigterm();
    let status = s.wait_exit(Duration::from_secs(2 + 5));
    assert!(
        status.is_some(),
        "still running {:?} after SIGTERM; stderr:\n{}",
        stopped.elapsed(),
        s.stderr()
    );
    assert!(status.unwrap().success(), "{}", s.stderr());
    eprintln!(
        "exited {:?} after SIGTERM with 20 slow and 20 idle clients",
        stopped.elapsed()
    );
    keep_trickling.join().unwrap();
}

// --- Who may reach the admin API -----------------------------------------------------------

const STATS: &str = "/api/v2/webhooks/queue/stats";
const RETRY_FAILED: &str = "/api/v2/webhooks/queue/retry-failed";

fn get(http: &Http, path: &str, headers: &str) -> Raw {
    raw(
        http,
        format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn post(http: &Http, path: &str, headers: &str) -> Raw {
    raw(
        http,
        format!("POST {path} HTTP/1.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn loopback_trust_refuses_forwarded_requests_foreign_hosts_and_other_origins() {
    let s = gate()
        .settings(|c| c.server.allowed_hosts = vec!["hookvault.internal".into()])
        .start();
    let host = format!("Host: {}\r\n", addr(&s.http));
    assert_eq!(get(&s.http, STATS, &host).status, 200);
    for forwarding in [
        "X-Forwarded-For: 203.0.113.7",
        "X-Real-IP: 203.0.113.7",
        "Forwarded: for=203.0.113.7",
    ] {
        let answer = get(&s.http, STATS, &format!("{host}{forwarding}\r\n"));
        assert_eq!(answer.status, 403, "{forwarding}: {answer:?}");
        assert_eq!(answer.json["error"], "forwarded_request");
    }
    for foreign in ["evil.example", "evil.example:8001", "127.0.0.1.nip.io"] {
        let answer = get(&s.http, STATS, &format!("Host: {foreign}\r\n"));
        assert_eq!(answer.status, 403, "{foreign}: {answer:?}");
        assert_eq!(answer.json["error"], "foreign_host");
    }
    for fine in [
        "localhost:1",
        "127.0.0.1",
        "[::1]:8001",
        "hookvault.internal:8001",
    ] {
        assert_eq!(
            get(&s.http, STATS, &format!("Host: {fine}\r\n")).status,
            200,
            "{fine}"
        );
    }
    // A cross-origin POST (a form or text/plain fetch from another site) is refused...
    let answer = post(
        &s.http,
        RETRY_FAILED,
        &format!("{host}Origin: http://evil.example\r\n"),
    );
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.json["error"], "cross_origin");
    let answer = post(&s.http, RETRY_FAILED, &format!("{host}Origin: null\r\n"));
    assert_eq!(answer.status, 403, "{answer:?}");
    // ...a same-origin one (the dashboard's) or one without Origin (curl) is not.
    let same = format!("{host}Origin: {}\r\n", s.http.base);
    assert_eq!(post(&s.http, RETRY_FAILED, &same).status, 200);
    assert_eq!(post(&s.http, RETRY_FAILED, &host).status, 200);
}

#[test]
fn a_method_in_another_spelling_reaches_no_handler() {
    let s = Hookvault::new().start();
    let host = format!("Host: {}\r\n", addr(&s.http));
    // Methods are case-sensitive: `post` is not POST, so it is no route's method and cannot
    // slip past the Origin check that a POST from another site meets.
    for method in ["post", "Post", "pOST"] {
        for origin in ["Origin: http://evil.example\r\n", ""] {
            let answer = raw(
                &s.http,
                format!(
                    "{method} {RETRY_FAILED} HTTP/1.1\r\n{host}{origin}Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(answer.status, 405, "{method} {origin:?}: {answer:?}");
            assert_eq!(answer.json["error"], "method_not_allowed");
            let message = answer.json["message"].as_str().unwrap();
            assert!(message.contains("case-sensitive"), "{message}");
        }
    }
    let answer = get(&s.http, "/api/v2/webhooks/queue/stats", &host);
    assert_eq!(answer.status, 200, "{answer:?}");
    let lowercase_get = raw(
        &s.http,
        format!("get /healthz HTTP/1.1\r\n{host}Connection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(lowercase_get.status, 405, "{lowercase_get:?}");
}

#[test]
fn the_admin_token_works_from_anywhere() {
    let s = gate()
        .settings(|c| c.server.admin_token = Some("s3cret".into()))
        .start();
    let answer = get(
        &s.http,
        STATS,
        "Host: evil.example\r\nX-Forwarded-For: 203.0.113.7\r\nAuthorization: Bearer s3cret\r\n",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = post(
        &s.http,
        RETRY_FAILED,
        "Host: hooks.example.com\r\nOrigin: https://hooks.example.com\r\nAuthorization: Bearer s3cret\r\n",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    // Without it, even from loopback: 401.
    assert_eq!(get(&s.http, STATS, "Host: localhost\r\n").status, 401);
}

/// A WebSocket handshake with the given extra headers: its HTTP status.
fn handshake(ws: SocketAddr, headers: &[(&str, &str)]) -> u16 {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{ws}/ws").into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(ws).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tungstenite::client(request, stream) {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            response.status().as_u16()
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[test]
fn a_websocket_handshake_from_another_origin_is_refused() {
    let s = gate().websocket().start();
    let ws = s.service().ws_addr().expect("event stream on");
    assert_eq!(handshake(ws, &[("Origin", "http://evil.example")]), 403);
    assert_eq!(handshake(ws, &[("X-Forwarded-For", "203.0.113.7")]), 403);
    assert_eq!(handshake(ws, &[("Host", "evil.example")]), 403);
    // The dashboard: served on the HTTP port, same host.
    assert_eq!(handshake(ws, &[("Origin", &s.http.base)]), 101);
    assert_eq!(handshake(ws, &[]), 101);
}

#[test]
fn a_trusted_proxy_names_the_client_in_the_audit_trail() {
    let forwarded = [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")];
    // Not trusted: the peer is recorded, whatever the header says.
    let s = gate().start();
    let id = s.http.post_with(INGEST, b"{}", &forwarded).json["id"]
        .as_i64()
        .unwrap();
    let recorded = s.http.get(&format!("/api/v2/webhooks/logs/{id}")).json["remote_addr"].clone();
    assert!(
        recorded.as_str().unwrap().starts_with("127.0.0.1:"),
        "{recorded}"
    );

    let s = gate()
        .settings(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".into()])
        .start();
    let id = s.http.post_with(INGEST, b"{}", &forwarded).json["id"]
        .as_i64()
        .unwrap();
    let recorded = s.http.get(&format!("/api/v2/webhooks/logs/{id}")).json["remote_addr"].clone();
    assert_eq!(recorded, "203.0.113.7");
}

#[test]
fn a_remote_client_through_the_gate_is_not_taken_for_loopback() {
    // tiny_http receives every request from the gate; the client's own address must be the
    // one the access rules and the audit trail see.
    let Some(ns) = harness::remote_client() else {
        return;
    };
    let listen = SocketAddr::new(ns.host_ip, 0).to_string();
    let s = gate().settings(move |c| c.server.listen = listen).start();
    let remote = Http::new(addr(&s.http));
    let (answer, stored) = ns.run(|| {
        (
            remote.get(STATS),
            remote.ingest("{\"content\":\"from afar\"}"),
        )
    });
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.json["error"], "forbidden");
    let id = stored.json["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{stored:?}"));
    let (_, recorded) = stored_row(s.database(), id);
    assert!(
        recorded.starts_with(&format!("{}:", ns.client_ip)),
        "recorded {recorded}, not {}",
        ns.client_ip
    );
}

/// Message `id`'s state and the address the audit trail recorded, read from the database
/// (the server listens only on the namespace's link, where this host is not loopback).
fn stored_row(database: &std::path::Path, id: i64) -> (String, String) {
    let db =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    db.query_row(
        "SELECT state, coalesce(remote_addr, '') FROM messages WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn pipelined_admin_requests_then_a_reset_from_afar_run_nothing() {
    // A remote client pipelines admin requests and resets the connection: none of them may
    // run as if it came from loopback, whatever tiny_http still holds.
    let Some(ns) = harness::remote_client() else {
        return;
    };
    let listen = SocketAddr::new(ns.host_ip, 0).to_string();
    let s = gate().settings(move |c| c.server.listen = listen).start();
    let target = addr(&s.http);
    // A dead letter (not JSON: dead at once), for the DELETEs to aim at.
    let id = ns.run(|| Http::new(target).ingest("not json")).json["id"]
        .as_i64()
        .unwrap();
    let dead = || stored_row(s.database(), id).0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead() != "dead" {
        assert!(Instant::now() < deadline, "no dead letter");
        std::thread::sleep(Duration::from_millis(20));
    }
    let one = format!(
        "DELETE /api/v2/webhooks/queue/dead-letters/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    );
    let pipelined = one.repeat(17);
    let remote = Http::new(target);
    let stored = ns.run(|| {
        for _ in 0..17 {
            let mut conn = TcpStream::connect(target).unwrap();
            conn.write_all(pipelined.as_bytes()).unwrap();
            // Reset: close with unread answers and SO_LINGER 0 semantics (drop after shutdown).
            let _ = conn.shutdown(Shutdown::Both);
        }
        remote.ingest("{\"content\":\"after the resets\"}")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dead(), "dead", "a remote DELETE ran");
    let after = stored.json["id"].as_i64().unwrap();
    let (_, recorded) = stored_row(s.database(), after);
    assert!(
        recorded.starts_with(&format!("{}:", ns.client_ip)),
        "recorded {recorded}, not {}",
        ns.client_ip
    );
}
