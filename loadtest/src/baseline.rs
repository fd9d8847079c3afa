//! The baseline server: tiny_http answering every request with a fixed
//! `200 {"status":"queued","id":0}` after reading its body, doing nothing else. Load-testing it
//! measures the machine's (and the client's) HTTP ceiling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Response, Server};

/// The fixed answer.
pub const BASELINE_BODY: &str = r#"{"status":"queued","id":0}"#;

/// A running baseline server. Dropping it (or [`BaselineServer::shutdown`]) stops it.
pub struct BaselineServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl BaselineServer {
    /// Listens on `listen` (`127.0.0.1:0` picks a free port) with `threads` handler threads.
    pub fn start(listen: &str, threads: usize) -> Result<BaselineServer, String> {
        let server = Server::http(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("{listen} is not an IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let threads = (0..threads.max(1))
            .map(|_| {
                let (server, stop, served) = (server.clone(), stop.clone(), served.clone());
                std::thread::spawn(move || serve(&server, &stop, &served))
            })
            .collect();
        Ok(BaselineServer {
            addr,
            stop,
            served,
            threads,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, ready for `Options::url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Blocks until the server stops (it never does on its own: for the CLI).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops the handler threads and waits for them.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(server: &Server, stop: &AtomicBool, served: &AtomicU64) {
    let header =
        Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("valid header");
    while !stop.load(Ordering::Relaxed) {
        let mut request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => continue,
        };
        // Read the body whole, as a real server must before answering.
        let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
        let response = Response::from_string(BASELINE_BODY).with_header(header.clone());
        // Counted before the answer goes out, so a client that has its answer sees the count.
        served.fetch_add(1, Ordering::Relaxed);
        let _ = request.respond(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_stops() {
        let server = BaselineServer::start("127.0.0.1:0", 2).unwrap();
        assert_ne!(server.addr().port(), 0);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(format!("{}/anything", server.url()))
            .send(&b"{\"a\":1}"[..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.body_mut().read_to_string().unwrap(), BASELINE_BODY);
        assert_eq!(server.served(), 1);
        server.shutdown();
    }

    #[test]
    fn bad_listen_address() {
        let err = BaselineServer::start("not-an-address", 1).err().unwrap();
        assert!(err.contains("cannot listen on not-an-address"), "{err}");
    }
}
