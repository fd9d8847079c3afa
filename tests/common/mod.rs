//! Test support: start hookvault on ephemeral ports with a temp database, in-process (the
//! library's `Service`, any processor) or as the real binary (for crash and signal tests),
//! and talk HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault::queue::Processor;
use hookvault::{Service, Settings};
use serde_json::Value;

#[derive(Clone)]
pub struct Http {
    pub base: String,
    agent: ureq::Agent,
}

/// A status and a parsed JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Http {
    pub fn new(addr: std::net::SocketAddr) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Http {
            base: format!("http://{addr}"),
            agent,
        }
    }

    fn finish(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, String> {
        let mut resp = resp.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            json,
            text,
            headers,
        })
    }

    pub fn try_post(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.send(body))
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Answer {
        self.try_post(path, body, &[]).expect("POST failed")
    }

    pub fn post_with(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        self.try_post(path, body, headers).expect("POST failed")
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call()).expect("GET failed")
    }

    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[])
    }

    pub fn delete(&self, path: &str) -> Answer {
        Self::finish(self.agent.delete(format!("{}{path}", self.base)).call())
            .expect("DELETE failed")
    }

    pub fn ingest(&self, body: &str) -> Answer {
        self.post("/api/v2/webhooks/orders", body.as_bytes())
    }

    pub fn stats(&self) -> Value {
        self.get("/api/v2/webhooks/queue/stats").json
    }

    pub fn status_of(&self, id: i64) -> String {
        self.get(&format!("/api/v2/webhooks/logs/{id}")).json["status"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// Waits until nothing is queued or in flight (panics after `limit`).
    pub fn wait_drained(&self, limit: Duration) -> Value {
        let until = Instant::now() + limit;
        loop {
            let s = self.stats();
            if s["queue_size"] == 0 {
                return s;
            }
            assert!(
                Instant::now() < until,
                "queue did not drain within {limit:?}: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until message `id` reaches `status`.
    pub fn wait_status(&self, id: i64, status: &str, limit: Duration) -> Value {
        let until = Instant::now() + limit;
        loop {
            let v = self.get(&format!("/api/v2/webhooks/logs/{id}")).json;
            if v["status"] == status {
                return v;
            }
            assert!(
                Instant::now() < until,
                "message {id} did not become {status} within {limit:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A seed-shaped order body with a unique order number.
pub fn order_body(n: u64) -> String {
    format!(
        r#"{{"embeds":[{{"author":{{"name":"Test Order {n}"}},"description":"Product\nTest Product {n}\nPrice\n$99.99\nOrder Number\nTEST-{n}\nEmail\ntest{n}@example.com"}}]}}"#
    )
}

/// Settings for tests: ephemeral ports, a database in `dir`, quick backoff.
pub fn test_settings(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.server.listen = "127.0.0.1:0".into();
    s.websocket.listen = "off".into();
    s.storage.path = dir.join("hookvault.db");
    s.queue.backoff_base_ms = 20;
    s.queue.backoff_max_ms = 200;
    s.queue.shutdown_timeout_s = 5;
    s.server.handler_threads = 8;
    s.queue.workers = 4;
    s
}

/// The library's server in this process.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub service: Option<Service>,
    pub http: Http,
}

impl InProcess {
    pub fn start(configure: impl FnOnce(&mut Settings)) -> InProcess {
        Self::start_with(configure, None)
    }

    pub fn start_with(
        configure: impl FnOnce(&mut Settings),
        processor: Option<Arc<dyn Processor>>,
    ) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        configure(&mut settings);
        let service = match processor {
            Some(p) => Service::start_with(settings, p),
            None => Service::start(settings),
        }
        .expect("service starts");
        let http = Http::new(service.http_addr());
        InProcess {
            dir,
            service: Some(service),
            http,
        }
    }

    pub fn stop(&mut self) -> hookvault::service::StopSummary {
        self.service.take().expect("running").stop()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.service.take() {
            s.stop();
        }
    }
}

/// `hookvault serve` on ephemeral ports (WebSocket off) with the database `db`.
pub fn serve_command(db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookvault"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--ws-listen",
        "off",
        "--db",
    ])
    .arg(db);
    cmd
}

/// The real `hookvault` binary as a child process.
pub struct Binary {
    pub child: Child,
    pub http: Http,
    pub db: PathBuf,
    pub stderr_log: PathBuf,
}

impl Binary {
    /// Starts `hookvault serve` on the database `db` with extra `HOOKVAULT_*` variables and
    /// waits for its "listening" line.
    pub fn start(db: &Path, env: &[(&str, &str)]) -> Binary {
        let stderr_log =
            db.with_extension(format!("stderr.{}.log", std::process::id() ^ rand_u32()));
        let mut cmd = serve_command(db);
        cmd.env("HOOKVAULT_QUEUE_SHUTDOWN_TIMEOUT_S", "10")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hookvault");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| {
                panic!(
                    "no listening line from hookvault: {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let http = Http::new(addr.parse().unwrap());
        Binary {
            child,
            http,
            db: db.to_path_buf(),
            stderr_log,
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit; None if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
