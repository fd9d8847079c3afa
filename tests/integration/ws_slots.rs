//! WebSocket slots are counted after authentication: sockets that connect and never finish a
//! handshake are closed after ~2 s and cannot lock out a client with the right token.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{ws_connect, Hookvault};

#[test]
fn idle_sockets_cannot_lock_out_a_client_with_the_token() {
    let server = Hookvault::new()
        .websocket()
        .settings(|s| s.server.admin_token = Some("slot-token".into()))
        .start();
    let addr = server.service().ws_addr().unwrap();
    // More idle sockets than there are handshake places (64): the oldest make room.
    let idle: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));

    let mut ws = ws_connect(addr, "/ws?token=slot-token").expect("handshake with the token");
    ws.send(tungstenite::Message::Ping(vec![1].into())).unwrap();

    // A socket that sent nothing is closed by the handshake deadline (~2 s).
    let started = Instant::now();
    let mut last = idle.into_iter().last().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = last.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the idle socket to be closed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        started.elapsed()
    );
}
