//! The live event broadcaster on its own (no server around it), over real sockets on
//! ephemeral ports.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hookvault::testing::events::{Broadcaster, Event, EventSink};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::harness::ws_connect;

/// A broadcaster under test, with its sink.
struct Running {
    bc: Broadcaster,
    sink: EventSink,
}

fn start() -> Running {
    start_with_token(None)
}

fn start_with_token(token: Option<&str>) -> Running {
    let (bc, sink) = Broadcaster::start(
        "127.0.0.1:0",
        token.map(str::to_string),
        Vec::new(),
        Box::new(|| json!({"received": 7, "queue_depth": 0})),
    )
    .expect("start broadcaster");
    Running { bc, sink }
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.bc.local_addr()
    }

    fn stop(self) -> Duration {
        let t = Instant::now();
        assert!(self.bc.stop(t + Duration::from_secs(5)), "the thread ended");
        t.elapsed()
    }
}

fn wait_clients(sink: &EventSink, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.client_count() != n {
        assert!(
            Instant::now() < deadline,
            "expected {n} clients, have {}",
            sink.client_count()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Next text frame that is not a stats event.
fn next_event(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("read frame") {
            Message::Text(t) if !t.as_str().starts_with(r#"{"type":"stats""#) => {
                return t.as_str().to_owned()
            }
            _ => {}
        }
    }
}

#[test]
fn events_arrive_with_exactly_the_documented_json() {
    let h = start();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);

    h.sink.publish(Event::WebhookReceived {
        id: 17,
        source: None,
    });
    h.sink.publish(Event::OrderCreated {
        order: json!({"id": 3, "total": "9.99", "currency": "USD"}),
    });
    h.sink.publish(Event::WebhookDead {
        id: 18,
        error: "parse error: \"x\"".into(),
    });

    assert_eq!(
        next_event(&mut ws),
        r#"{"type":"webhook.received","id":17}"#
    );
    assert_eq!(
        next_event(&mut ws),
        r#"{"type":"order.created","order":{"currency":"USD","id":3,"total":"9.99"}}"#
    );
    assert_eq!(
        next_event(&mut ws),
        r#"{"type":"webhook.dead","id":18,"error":"parse error: \"x\""}"#
    );
    assert_eq!(h.sink.dropped(), 0);
    h.stop();
}

/// With nobody connected the broadcaster sleeps in `accept`; the last client leaving puts it
/// back to sleep, and the next one wakes it and gets events as the first one did.
#[test]
fn a_client_after_the_last_one_left_is_served_as_the_first() {
    let h = start();
    for id in [1, 2, 3] {
        let mut ws = ws_connect(h.addr(), "/ws").unwrap();
        wait_clients(&h.sink, 1);
        h.sink.publish(Event::WebhookReceived { id, source: None });
        assert_eq!(
            next_event(&mut ws),
            format!(r#"{{"type":"webhook.received","id":{id}}}"#)
        );
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
        wait_clients(&h.sink, 0);
        // Sent with nobody connected: dropped, never shown to the next client.
        h.sink.publish(Event::WebhookReceived {
            id: 100 + id,
            source: None,
        });
    }
    assert_eq!(h.sink.dropped(), 0);
    h.stop();
}

#[test]
fn stats_frame_arrives_within_1_5s() {
    let h = start();
    let t = Instant::now();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    let frame = loop {
        if let Message::Text(t) = ws.read().unwrap() {
            break t.as_str().to_owned();
        }
    };
    let elapsed = t.elapsed();
    assert_eq!(frame, r#"{"type":"stats","queue_depth":0,"received":7}"#);
    assert!(
        elapsed < Duration::from_millis(1500),
        "stats after {elapsed:?}"
    );
    h.stop();
}

#[test]
fn wrong_path_is_refused_with_404() {
    let h = start();
    match ws_connect(h.addr(), "/nope").map_err(|e| *e) {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 404),
        Err(e) => panic!("expected HTTP 404, got {e}"),
        Ok(_) => panic!("/nope must not upgrade"),
    }
    thread::sleep(Duration::from_millis(150));
    assert_eq!(h.sink.client_count(), 0);
    h.stop();
}

#[test]
fn with_an_admin_token_the_stream_needs_it() {
    let h = start_with_token(Some("s3cret"));
    for path in ["/ws", "/ws?token=wrong"] {
        match ws_connect(h.addr(), path) {
            Err(e) => match *e {
                WsError::Http(resp) => assert_eq!(resp.status(), 401, "{path}"),
                other => panic!("{path}: expected HTTP 401, got {other:?}"),
            },
            Ok(_) => panic!("{path}: connected without the right token"),
        }
    }
    let mut ws = ws_connect(h.addr(), "/ws?token=s3cret").expect("the right token is let in");
    wait_clients(&h.sink, 1);
    h.sink.publish(Event::WebhookReceived {
        id: 3,
        source: None,
    });
    assert_eq!(next_event(&mut ws), r#"{"type":"webhook.received","id":3}"#);
}

#[test]
fn silent_connection_does_not_stall_the_broadcaster() {
    let h = start();
    // Connects, never sends the HTTP upgrade.
    let mut silent = TcpStream::connect(h.addr()).unwrap();
    thread::sleep(Duration::from_millis(100));

    let t = Instant::now();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);
    h.sink.publish(Event::WebhookReceived {
        id: 1,
        source: None,
    });
    assert_eq!(next_event(&mut ws), r#"{"type":"webhook.received","id":1}"#);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // And the silent one is cut off after the handshake timeout.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("silent connection should be closed, got {other:?}"),
    }
    h.stop();
}

#[test]
fn client_close_is_handled() {
    let h = start();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(WsError::ConnectionClosed) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    wait_clients(&h.sink, 0);
    h.stop();
}

#[test]
fn ping_is_answered() {
    let h = start();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);
    ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    loop {
        if let Message::Pong(p) = ws.read().unwrap() {
            assert_eq!(&p[..], b"hi");
            break;
        }
    }
    h.stop();
}

#[test]
fn slow_client_is_dropped_and_publish_never_blocks() {
    let h = start();
    let _dead = ws_connect(h.addr(), "/ws").unwrap(); // never read
    let mut reader = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 2);

    let reader_thread = thread::spawn(move || {
        let mut ids = Vec::new();
        loop {
            if let Message::Text(t) = reader.read().expect("reader must stay connected") {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str().unwrap() {
                    "webhook.dead" => ids.push(v["id"].as_i64().unwrap()),
                    "webhook.received" => return ids, // sentinel
                    _ => {}
                }
            }
        }
    });

    let payload = "x".repeat(1000);
    let mut published: i64 = 0;
    let t = Instant::now();
    for _ in 0..50_000 {
        h.sink.publish(Event::WebhookDead {
            id: published,
            error: payload.clone(),
        });
        published += 1;
    }
    let burst = t.elapsed();
    eprintln!(
        "published 50000 x 1KiB events in {burst:?} ({} dropped by the queue)",
        h.sink.dropped()
    );

    // Keep the stream flowing until the non-reading client is cut off.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.sink.client_count() > 1 {
        assert!(Instant::now() < deadline, "dead client never dropped");
        for _ in 0..1000 {
            h.sink.publish(Event::WebhookDead {
                id: published,
                error: payload.clone(),
            });
            published += 1;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(h.sink.client_count(), 1);

    // Sentinel: retry until the queue accepts it (we are the only producer).
    let mut sentinel_drops = 0;
    loop {
        let before = h.sink.dropped();
        h.sink.publish(Event::WebhookReceived {
            id: -1,
            source: None,
        });
        if h.sink.dropped() == before {
            break;
        }
        sentinel_drops += 1;
        thread::sleep(Duration::from_millis(5));
    }

    let ids = reader_thread.join().unwrap();
    let dropped = h.sink.dropped();
    eprintln!(
        "published {published}, queue-dropped {dropped}, reader got {}",
        ids.len()
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order");
    // Everything the broadcaster accepted reached the reading client: the
    // only losses are the counted queue drops.
    assert_eq!(
        ids.len() as u64 + (dropped - sentinel_drops),
        published as u64
    );
    h.stop();
}

#[test]
fn shutdown_closes_clients_and_join_is_prompt() {
    let h = start();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);

    let took = h.stop();
    assert!(took < Duration::from_secs(1), "join took {took:?}");

    let mut saw_close = false;
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(f.code, CloseCode::Away);
                saw_close = true;
            }
            Ok(_) => {}
            Err(WsError::ConnectionClosed) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(saw_close);
}

/// With nobody connected the thread sleeps in a blocking `accept` (for up to a minute):
/// the stop must wake it.
#[test]
fn a_stop_with_nobody_connected_is_prompt() {
    let h = start();
    let t = Instant::now();
    assert!(h.bc.stop(t + Duration::from_secs(5)), "the thread ended");
    assert!(t.elapsed() < Duration::from_secs(1));
    // Publishing after the stop is a harmless no-op.
    h.sink.publish(Event::WebhookReceived {
        id: 1,
        source: None,
    });
    assert_eq!(h.sink.dropped(), 0);
}

#[test]
fn publish_without_clients_is_free_and_uncounted() {
    let h = start();
    for i in 0..100_000 {
        h.sink.publish(Event::WebhookReceived {
            id: i,
            source: None,
        });
    }
    assert_eq!(h.sink.dropped(), 0);

    let off = EventSink::disabled();
    off.publish(Event::WebhookReceived {
        id: 1,
        source: None,
    });
    assert_eq!(off.dropped(), 0);
    assert!(!off.has_clients());
    h.stop();
}

#[test]
fn a_plain_get_is_answered_426_upgrade_required() {
    let h = start();
    let mut tcp = TcpStream::connect(h.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").expect("a whole HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{reply}"
    );
    let headers = head.to_ascii_lowercase();
    assert!(headers.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(
        headers.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "upgrade_required");
    assert!(body["message"].as_str().unwrap().contains("WebSocket"));
    assert_eq!(h.sink.client_count(), 0);
    h.stop();
}

#[test]
fn a_ten_mib_frame_is_answered_with_close_1009() {
    let h = start();
    let mut ws = ws_connect(h.addr(), "/ws").unwrap();
    wait_clients(&h.sink, 1);
    // Write the frame by hand on the same socket (a client's frames are masked): the header
    // says 10 MiB, and the payload follows from another thread while this one reads.
    let mut raw = ws.get_ref().try_clone().unwrap();
    let writer = thread::spawn(move || {
        let len: u64 = 10 * 1024 * 1024;
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        if raw.write_all(&header).is_err() {
            return;
        }
        let chunk = vec![0x5a_u8; 64 * 1024];
        for _ in 0..len / chunk.len() as u64 {
            // The server stops reading and drops the socket: a failed write is expected.
            if raw.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let close = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("expected a close frame before the socket went: {e}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(frame.code, CloseCode::Size);
    assert_eq!(u16::from(frame.code), 1009);
    writer.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sink.client_count() != 0 {
        assert!(Instant::now() < deadline, "the client was not dropped");
        thread::sleep(Duration::from_millis(10));
    }
    h.stop();
}
