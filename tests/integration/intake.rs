//! Ingest through real HTTP against the library's server.

use std::time::Duration;

use crate::harness::{order_body, Hookvault};

const INGEST: &str = "/api/v2/webhooks/orders";

#[test]
fn a_posted_webhook_is_processed_and_logged() {
    let s = Hookvault::new().start();
    let a = s.http.ingest(&order_body(1));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["status"], "queued");
    let id = a.json["id"].as_i64().expect("id");
    let entry = s.http.wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["path"], INGEST);
    assert!(entry["payload"].as_str().unwrap().contains("TEST-1"));
    let stats = s.http.stats();
    assert_eq!(stats["total_received"], 1);
    assert_eq!(stats["total_processed"], 1);
}

#[test]
fn duplicate_idempotency_key_answers_the_first_id_and_stores_once() {
    let s = Hookvault::new().start();
    let first = s.http.post_with(
        INGEST,
        order_body(2).as_bytes(),
        &[("Idempotency-Key", "abc-1")],
    );
    assert_eq!(first.json["status"], "queued");
    let again = s.http.post_with(
        INGEST,
        order_body(2).as_bytes(),
        &[("Idempotency-Key", "abc-1")],
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(again.json["id"], first.json["id"]);
    // `webhook-id` (Standard Webhooks) is a key too.
    let w1 = s.http.post_with(INGEST, b"{}", &[("webhook-id", "msg_1")]);
    let w2 = s.http.post_with(INGEST, b"{}", &[("webhook-id", "msg_1")]);
    assert_eq!(w2.json["status"], "duplicate");
    assert_eq!(w2.json["id"], w1.json["id"]);
    s.http.wait_drained(Duration::from_secs(10));
    let stats = s.http.stats();
    assert_eq!(stats["total_received"], 2);
    assert_eq!(stats["total_duplicates"], 2);
}

#[test]
fn concurrent_duplicates_are_stored_once() {
    let s = Hookvault::new().start();
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let http = &s.http;
                scope.spawn(move || {
                    http.post_with(INGEST, b"{}", &[("Idempotency-Key", "same")])
                        .json["id"]
                        .as_i64()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    s.http.wait_drained(Duration::from_secs(10));
    assert_eq!(s.http.stats()["total_received"], 1);
}

#[test]
fn invalid_json_is_stored_then_dead_with_the_parse_error() {
    let s = Hookvault::new().start();
    let a = s
        .http
        .ingest(r#"{"embeds":[{"description":"Product\nBroken"#);
    assert_eq!(a.status, 200);
    let entry = s.http.wait_status(
        a.json["id"].as_i64().unwrap(),
        "dead",
        Duration::from_secs(10),
    );
    assert_eq!(entry["attempts"], 1, "a permanent error is not retried");
    let err = entry["last_error"].as_str().unwrap();
    assert!(err.contains("invalid JSON") && err.contains("EOF"), "{err}");
}

#[test]
fn oversized_bodies_get_413_and_nothing_is_stored() {
    let s = Hookvault::new()
        .settings(|c| c.server.max_body_bytes = 100)
        .start();
    let a = s.http.post(INGEST, &[b'x'; 101]);
    assert_eq!(a.status, 413);
    assert_eq!(a.json["error"], "payload_too_large");
    assert!(a.json["message"]
        .as_str()
        .unwrap()
        .contains("max_body_bytes"));
    let ok = s.http.post(INGEST, &[b' '; 100]);
    assert_eq!(ok.status, 200, "exactly the limit is fine");
    assert_eq!(s.http.stats()["total_received"], 1);
}

#[test]
fn non_utf8_payloads_are_kept_byte_for_byte() {
    let s = Hookvault::new().start();
    let a = s.http.post(INGEST, &[0xff, 0xfe, 0x00, 0x41]);
    assert_eq!(a.status, 200);
    let entry = s.http.wait_status(
        a.json["id"].as_i64().unwrap(),
        "dead",
        Duration::from_secs(10),
    );
    assert_eq!(entry["payload_encoding"], "base64");
    assert_eq!(entry["payload"], "//4AQQ==");
}

#[test]
fn unknown_paths_and_wrong_methods_get_json_errors() {
    let s = Hookvault::new().start();
    let a = s.http.get("/nope");
    assert_eq!(a.status, 404);
    assert_eq!(a.json["error"], "not_found");
    let a = s.http.get(INGEST);
    assert_eq!(a.status, 405);
    assert_eq!(a.header("Allow"), Some("POST"));
    let a = s.http.get("/api/v2/webhooks/logs/999999");
    assert_eq!(a.status, 404);
    let a = s.http.get("/api/v2/webhooks/logs/abc");
    assert_eq!(a.status, 400);
}

#[test]
fn ingest_token_is_required_when_configured() {
    let s = Hookvault::new()
        .settings(|c| c.ingest.token = Some("s3cret".into()))
        .start();
    let a = s.http.ingest("{}");
    assert_eq!(a.status, 401);
    assert_eq!(a.json["error"], "token_invalid");
    assert!(a.json["message"]
        .as_str()
        .unwrap()
        .contains("X-Webhook-Token"));
    assert_eq!(
        s.http.post(&format!("{INGEST}?token=wrong"), b"{}").status,
        401
    );
    assert_eq!(
        s.http.post(&format!("{INGEST}?token=s3cret"), b"{}").status,
        200
    );
    assert_eq!(
        s.http
            .post_with(INGEST, b"{}", &[("X-Webhook-Token", "s3cret")])
            .status,
        200
    );
    assert_eq!(s.http.stats()["total_received"], 2);
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    use std::io::{Read, Write};
    // Closing idle connections is the gate's work (in direct mode, the proxy's).
    let s = Hookvault::new()
        .settings(|c| {
            c.server.idle_timeout_s = 1;
            c.server.edge = "gate".into();
        })
        .start();
    let addr = s.http.base.trim_start_matches("http://").to_string();
    // A keep-alive connection that is used, then left idle.
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = order_body(77);
    write!(
        conn,
        "POST {INGEST} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // The whole answer, head and body, however many reads it arrives in.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |a: &[u8]| {
        let text = String::from_utf8_lossy(a);
        let Some(head_end) = text.find("\r\n\r\n") else {
            return false;
        };
        let length = text[..head_end]
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        a.len() >= head_end + 4 + length
    };
    while !complete(&answer) {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed mid-answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    // The server closes it: read returns EOF (0 bytes), well before our own 10 s timeout.
    let n = conn.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "got data instead of a close: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The service is fine and the webhook was stored.
    assert_eq!(s.http.stats()["total_received"], 1);
}

#[test]
fn a_stalled_body_gets_408_and_nothing_is_stored() {
    use std::io::{Read, Write};
    // Bounding a stalled body is the gate's work (in direct mode, the proxy's).
    let s = Hookvault::new()
        .settings(|c| {
            c.server.idle_timeout_s = 1;
            c.server.edge = "gate".into();
        })
        .start();
    let addr = s.http.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Announce 100 kB (tiny_http reads bodies up to 1 KiB itself, larger ones reach the
    // handler as a stream), send 10 bytes, then stall.
    write!(
        conn,
        "POST {INGEST} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{{\"embeds\":"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(s.http.stats()["total_received"], 0);
}
