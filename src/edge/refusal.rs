//! Every answer the edge gives for a request it will not store, worded once: the gate sends
//! these itself, and ingest turns the same ones into its replies in direct mode, so a sender
//! reads the same code and text whichever mode is running.

use std::time::Duration;

/// A request refused: its status, its JSON `error` code and message, and for a `503` when
/// to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after_s: Option<u32>,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: String) -> Refusal {
        Refusal {
            status,
            code,
            message,
            retry_after_s: None,
        }
    }

    pub fn too_large(limit: u64) -> Refusal {
        Refusal::new(
            413,
            "payload_too_large",
            format!(
                "the body is larger than server.max_body_bytes ({limit} bytes); nothing was stored"
            ),
        )
    }

    pub fn bad_content_length(value: &str) -> Refusal {
        Refusal::new(
            400,
            "bad_content_length",
            format!("Content-Length {value:?} is not a plain number of bytes; nothing was stored"),
        )
    }

    pub fn ambiguous_length(why: &str) -> Refusal {
        Refusal::new(
            400,
            "bad_content_length",
            format!("{why}: the body's length is ambiguous; nothing was stored"),
        )
    }

    pub fn bad_transfer_encoding(why: &str) -> Refusal {
        Refusal::new(
            400,
            "bad_transfer_encoding",
            format!("{why}; only one Transfer-Encoding: chunked on HTTP/1.1 is accepted; nothing was stored"),
        )
    }

    pub fn bad_chunk(why: &str) -> Refusal {
        Refusal::new(400, "bad_chunk", format!("{why}; nothing was stored"))
    }

    pub fn bad_header(why: &str) -> Refusal {
        Refusal::new(400, "bad_header", format!("{why}; nothing was stored"))
    }

    pub fn bad_request_line(why: &str) -> Refusal {
        Refusal::new(400, "bad_request", format!("{why}; nothing was stored"))
    }

    pub fn header_too_large(max: usize) -> Refusal {
        Refusal::new(
            431,
            "header_too_large",
            format!("the request line and headers are larger than {max} bytes or 100 fields; nothing was stored"),
        )
    }

    pub fn expectation_failed(value: &str) -> Refusal {
        Refusal::new(
            417,
            "expectation_failed",
            format!("Expect {value:?} is not supported, only 100-continue; nothing was stored"),
        )
    }

    pub fn incomplete_body(got: u64, declared: u64) -> Refusal {
        Refusal::new(
            400,
            "incomplete_body",
            format!("the body ended after {got} of {declared} bytes; nothing was stored"),
        )
    }

    pub fn empty_body() -> Refusal {
        Refusal::new(
            400,
            "empty_body",
            "the request has no body; a webhook is its body, so nothing was stored".into(),
        )
    }

    pub fn upgrade_refused() -> Refusal {
        Refusal::new(
            400,
            "upgrade_not_supported",
            "this port does not switch protocols (Connection: upgrade); nothing was stored".into(),
        )
    }

    /// The whole request took longer than `server.body_timeout_s`.
    pub fn too_slow(limit: Duration) -> Refusal {
        Refusal::new(
            408,
            "request_timeout",
            format!(
                "the request was not complete within {} s (server.body_timeout_s); nothing was stored",
                limit.as_secs()
            ),
        )
    }

    /// The request stopped arriving for `server.idle_timeout_s`.
    pub fn stalled(limit: Duration) -> Refusal {
        Refusal::new(
            408,
            "request_timeout",
            format!(
                "the request stopped arriving for {} s (server.idle_timeout_s); nothing was stored",
                limit.as_secs()
            ),
        )
    }

    /// The service is stopping while the request arrives: not the sender's fault.
    pub fn shutting_down() -> Refusal {
        Refusal {
            retry_after_s: Some(5),
            ..Refusal::new(
                503,
                "shutting_down",
                "hookvault is stopping; nothing was stored, retry later".into(),
            )
        }
    }

    /// tiny_http could not be reached or gave no answer.
    pub fn handlers_unavailable() -> Refusal {
        Refusal {
            retry_after_s: Some(2),
            ..Refusal::new(
                503,
                "unavailable",
                "the request handlers did not answer; retry later (a retry with the same Idempotency-Key is not stored twice)".into(),
            )
        }
    }

    pub fn too_many_connections(max: usize) -> Refusal {
        Refusal {
            retry_after_s: Some(1),
            ..Refusal::new(
                503,
                "too_many_connections",
                format!("{max} connections are open (server.max_connections); nothing was stored, retry later"),
            )
        }
    }

    /// The JSON body, `{"error","message"}`.
    pub fn json(&self) -> String {
        serde_json::json!({ "error": self.code, "message": self.message }).to_string()
    }

    /// The whole HTTP answer, closing the connection. `Retry-After` is drawn from the base
    /// to twice it, like every `503` of hookvault's, so senders refused together come back
    /// spread out.
    pub fn http(&self) -> Vec<u8> {
        let body = self.json();
        let retry = self
            .retry_after_s
            .map(|s| {
                let base = u64::from(s);
                format!(
                    "Retry-After: {}\r\n",
                    crate::base::jitter::between(base, 2 * base)
                )
            })
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n{body}",
            self.status,
            reason(self.status),
            body.len()
        )
        .into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
