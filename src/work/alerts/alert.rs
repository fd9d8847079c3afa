//! What an alert says, before it is formatted for a target's kind (`format.rs`).

use serde::Serialize;

/// How urgent an alert is; a target's kind maps it onto its own scale (ntfy's priority, an
/// embed's colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A recovery, a test.
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert for one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `status`, `dead_letter`, `backlog`, `relay`, `disk`, or `test`.
    pub event: &'static str,
    pub severity: Severity,
    /// One line: what happened.
    pub summary: String,
    /// More lines: why, what to look at.
    pub details: Vec<String>,
    /// The node that sent it.
    pub node: String,
    /// When it was decided, milliseconds since the epoch.
    pub at_ms: i64,
}

impl Alert {
    /// What `POST /api/v2/alerts/test` sends to every target.
    pub fn test(node: &str, at_ms: i64) -> Alert {
        Alert {
            event: "test",
            severity: Severity::Info,
            summary: "hookvault test alert: this target is set up".into(),
            details: vec![format!(
                "Sent on an operator's request from {node}; nothing is wrong."
            )],
            node: node.to_string(),
            at_ms,
        }
    }
}
