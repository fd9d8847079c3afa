//! The live event stream of a running service: a WebSocket client sees each webhook arrive,
//! each order created, each dead letter, and the stats once a second.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::WebSocket;

use crate::harness::{order_body, ws_connect, Hookvault};

fn next_json(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().expect("event stream closed") {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            _ => continue,
        }
    }
}

/// Reads events until one matches, skipping others (stats frames interleave).
fn wait_for(ws: &mut WebSocket<TcpStream>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < until, "no {what} event");
        let ev = next_json(ws);
        if pred(&ev) {
            return ev;
        }
    }
}

#[test]
fn events_follow_webhooks_through_their_life() {
    let s = Hookvault::new().websocket().start();
    let addr = s.service().ws_addr().expect("websocket on");
    let mut ws = ws_connect(addr, "/ws").expect("handshake");

    // The first stats frame proves the broadcaster counts us as a client.
    let stats = wait_for(&mut ws, "stats", |e| e["type"] == "stats");
    assert!(
        stats["total_received"].is_u64() && stats["status"].is_string(),
        "{stats}"
    );

    let id = s.http.ingest(&order_body(9)).json["id"].as_i64().unwrap();
    let received = wait_for(&mut ws, "webhook.received", |e| {
        e["type"] == "webhook.received"
    });
    assert_eq!(received["id"], id);
    let created = wait_for(&mut ws, "order.created", |e| e["type"] == "order.created");
    assert_eq!(created["order"]["order_number"], "TEST-9");
    assert_eq!(created["order"]["amount_cents"], 9999);
    assert_eq!(created["order"]["message_id"], id);

    let bad = s.http.ingest(r#"{"content":"no order here"}"#).json["id"]
        .as_i64()
        .unwrap();
    let dead = wait_for(&mut ws, "webhook.dead", |e| e["type"] == "webhook.dead");
    assert_eq!(dead["id"], bad);
    assert!(
        dead["error"].as_str().unwrap().contains("no order number"),
        "{dead}"
    );
}

#[test]
fn with_an_admin_token_the_stream_is_closed_to_strangers() {
    let s = Hookvault::new()
        .websocket()
        .settings(|c| c.server.admin_token = Some("t0ken".into()))
        .start();
    let addr = s.service().ws_addr().unwrap();
    // The handshake's HTTP status when refused.
    let open = |path: &str| -> Result<WebSocket<TcpStream>, u16> {
        ws_connect(addr, path).map_err(|e| match *e {
            tungstenite::Error::Http(resp) => resp.status().as_u16(),
            e => panic!("{path}: {e}"),
        })
    };
    assert_eq!(open("/ws").err(), Some(401));
    assert_eq!(open("/ws?token=nope").err(), Some(401));
    let mut ws = open("/ws?token=t0ken").expect("the admin token opens the stream");
    let stats = wait_for(&mut ws, "stats", |e| e["type"] == "stats");
    assert_eq!(stats["total_received"], 0);
}
