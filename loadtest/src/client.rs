//! HTTP: the ingest transport (one keep-alive [`ureq::Agent`] per sender thread) and the admin
//! calls verification makes.

use std::time::Duration;

use ureq::Agent;

use crate::admin::{AdminApi, LogEntry, Stats};
use crate::text::clip;

/// Ingest path, relative to the base URL.
pub const INGEST_PATH: &str = "/api/v2/webhooks/orders";
/// Stats path, relative to the base URL.
pub const STATS_PATH: &str = "/api/v2/webhooks/queue/stats";
/// Log entry path prefix, relative to the base URL.
pub const LOGS_PATH: &str = "/api/v2/webhooks/logs/";

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one ingest request. `Err` means no HTTP answer at all (a transport error).
pub trait Transport {
    fn post(&mut self, body: &[u8]) -> Result<Reply, String>;
}

/// What a 2xx ingest answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    Queued(i64),
    Duplicate(i64),
}

/// Parses `{"status":"queued"|"duplicate","id":N}`.
pub fn parse_ack(body: &str) -> Option<AckKind> {
    #[derive(serde::Deserialize)]
    struct Answer {
        status: String,
        id: i64,
    }
    let a: Answer = serde_json::from_str(body).ok()?;
    match a.status.as_str() {
        "queued" => Some(AckKind::Queued(a.id)),
        "duplicate" => Some(AckKind::Duplicate(a.id)),
        _ => None,
    }
}

/// `base` without a trailing slash.
pub fn base_url(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

fn agent(timeout: Duration) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent("hookvault-loadtest")
        .build()
        .into()
}

/// Ingest over HTTP with one agent (hence one pooled keep-alive connection) per instance.
pub struct HttpTransport {
    agent: Agent,
    url: String,
    token: Option<String>,
}

impl HttpTransport {
    /// `base` is the server's base URL; `token` is sent as `X-Webhook-Token`.
    pub fn new(base: &str, token: Option<&str>, timeout: Duration) -> HttpTransport {
        HttpTransport {
            agent: agent(timeout),
            url: format!("{}{INGEST_PATH}", base_url(base)),
            token: token.map(str::to_string),
        }
    }
}

impl Transport for HttpTransport {
    fn post(&mut self, body: &[u8]) -> Result<Reply, String> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("X-Webhook-Token", t);
        }
        let mut resp = req.send(body).map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        // Read the body whole so the connection goes back to the pool.
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok(Reply { status, body })
    }
}

/// The admin endpoints over HTTP (`Authorization: Bearer <admin token>` when one is given).
pub struct HttpAdmin {
    agent: Agent,
    base: String,
    token: Option<String>,
}

impl HttpAdmin {
    pub fn new(base: &str, admin_token: Option<&str>, timeout: Duration) -> HttpAdmin {
        HttpAdmin {
            agent: agent(timeout),
            base: base_url(base),
            token: admin_token.map(str::to_string),
        }
    }

    fn get(&self, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {url}: reading the answer: {e}"))?;
        Ok(Reply { status, body })
    }
}

impl AdminApi for HttpAdmin {
    fn stats(&mut self) -> Result<Stats, String> {
        let r = self.get(STATS_PATH)?;
        match r.status {
            200 => Stats::parse(&r.body),
            401 | 403 => Err(format!(
                "GET {STATS_PATH} answered {} (pass the admin token with --admin-token)",
                r.status
            )),
            404 => Err(format!(
                "GET {STATS_PATH} answered 404: no stats endpoint here"
            )),
            s => Err(format!("GET {STATS_PATH} answered {s}: {}", clip(&r.body))),
        }
    }

    fn log(&mut self, id: i64) -> Result<Option<LogEntry>, String> {
        let path = format!("{LOGS_PATH}{id}");
        let r = self.get(&path)?;
        match r.status {
            200 => serde_json::from_str(&r.body)
                .map(Some)
                .map_err(|e| format!("GET {path}: unexpected answer ({e}): {}", clip(&r.body))),
            404 => Ok(None),
            s => Err(format!("GET {path} answered {s}: {}", clip(&r.body))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks() {
        assert_eq!(
            parse_ack(r#"{"status":"queued","id":42}"#),
            Some(AckKind::Queued(42))
        );
        assert_eq!(
            parse_ack(r#"{"id":7,"status":"duplicate","extra":true}"#),
            Some(AckKind::Duplicate(7))
        );
        assert_eq!(parse_ack(r#"{"status":"ok"}"#), None);
        assert_eq!(parse_ack("<html>"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(base_url("http://h:1/"), "http://h:1");
        let t = HttpTransport::new("http://h:1/", None, Duration::from_secs(1));
        assert_eq!(t.url, "http://h:1/api/v2/webhooks/orders");
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        // port 1 on loopback: nothing listens there
        let mut t = HttpTransport::new("http://127.0.0.1:1", None, Duration::from_secs(2));
        assert!(t.post(b"{}").is_err());
        let mut a = HttpAdmin::new("http://127.0.0.1:1", None, Duration::from_secs(2));
        assert!(a.stats().is_err());
    }
}
