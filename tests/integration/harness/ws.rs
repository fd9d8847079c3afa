//! A WebSocket client for the live event stream.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::{HandshakeError, WebSocket};

/// Opens `ws://{addr}{path}` with a 10 s read timeout. A refused handshake comes back as the
/// error (`tungstenite::Error::Http` carries the status).
pub fn ws_connect(
    addr: SocketAddr,
    path: &str,
) -> Result<WebSocket<TcpStream>, Box<tungstenite::Error>> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tungstenite::client(format!("ws://{addr}{path}"), stream) {
        Ok((ws, _resp)) => Ok(ws),
        Err(HandshakeError::Failure(e)) => Err(Box::new(e)),
        Err(HandshakeError::Interrupted(_)) => unreachable!("blocking stream"),
    }
}
