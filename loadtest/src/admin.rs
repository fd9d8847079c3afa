//! What verification reads from a server's admin endpoints, and the trait that fetches it:
//! a leaf module, so the HTTP client ([`crate::client`]) implements the trait and verification
//! ([`crate::verify`]) consumes it without either importing the other.

use serde::{Deserialize, Serialize};

use crate::text::clip;

/// The fields of `GET /api/v2/webhooks/queue/stats` that verification reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub queue_size: u64,
    #[serde(default)]
    pub in_flight: u64,
    #[serde(default)]
    pub total_received: u64,
    pub total_processed: u64,
    pub total_failed: u64,
    #[serde(default)]
    pub dead_letter_queue_size: u64,
    #[serde(default)]
    pub status: String,
}

impl Stats {
    /// Parses a stats answer; the error names the missing field.
    pub fn parse(body: &str) -> Result<Stats, String> {
        serde_json::from_str(body)
            .map_err(|e| format!("unexpected stats answer ({e}): {}", clip(body)))
    }

    /// Messages not yet in a final state.
    pub fn pending(&self) -> u64 {
        self.queue_size + self.in_flight
    }

    /// Messages that reached a final state (processed or failed), ever.
    pub fn finished(&self) -> u64 {
        self.total_processed + self.total_failed
    }
}

/// The fields of `GET /api/v2/webhooks/logs/{id}` that verification reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(default)]
    pub id: i64,
    pub status: String,
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The admin calls verification needs.
pub trait AdminApi {
    /// Current queue stats.
    fn stats(&mut self) -> Result<Stats, String>;
    /// One message's log entry; `Ok(None)` when the server answers 404.
    fn log(&mut self, id: i64) -> Result<Option<LogEntry>, String>;
}
