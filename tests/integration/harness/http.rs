//! The HTTP client every test talks to hookvault with: statuses are answers, not errors, and
//! bodies come back both as text and as parsed JSON.

use std::time::{Duration, Instant};

use serde_json::Value;

/// A client for one server's base URL.
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

    /// A POST that may fail at the transport level (the server died mid-request).
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

    /// A GET that may fail at the transport level (the server is not up yet, or gone).
    pub fn try_get(&self, path: &str) -> Result<Answer, String> {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).call())
    }

    /// Waits until `/readyz` answers 200 (panics after `limit`), e.g. for a server started
    /// outside the harness or one still opening a large database.
    pub fn wait_ready(&self, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            match self.try_get("/readyz") {
                Ok(a) if a.status == 200 => return,
                other => assert!(
                    Instant::now() < until,
                    "{} not ready within {limit:?}: {other:?}",
                    self.base
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

    /// POSTs `body` to the ingest path.
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
