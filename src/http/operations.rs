//! Operator endpoints: stats, the audit log, health.

use serde_json::{json, Value};

use super::router::Call;
use super::{AppState, Reply};
use crate::stats::{QueueView, StatsSnapshot};
use crate::store::MessageDetail;

pub fn queue_view(state: &AppState) -> QueueView {
    QueueView {
        channel_len: state.dispatcher.channel_len(),
        channel_capacity: state.dispatcher.channel_capacity(),
        max_backlog: state.settings.queue.max_backlog,
    }
}

pub fn stats(state: &AppState, _call: &mut Call) -> Reply {
    let snapshot = StatsSnapshot::build(&state.live, queue_view(state), state.reader.file_sizes());
    Reply::json(200, &snapshot)
}

pub fn healthz(_state: &AppState, _call: &mut Call) -> Reply {
    Reply::json(200, &json!({"status": "ok"}))
}

pub fn log_entry(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.reader.message(id) {
        Ok(Some(detail)) => Reply::json(200, &detail_json(&detail)),
        Ok(None) => Reply::error(404, "not_found", &format!("no message with id {id}")),
        Err(e) => Reply::unavailable("storage_unavailable", &e.to_string(), 2),
    }
}

/// A whole message as JSON. A payload that is not UTF-8 is given as base64 with
/// `payload_encoding: "base64"`, so nothing is lost in the answer either.
pub fn detail_json(d: &MessageDetail) -> Value {
    let mut v = serde_json::to_value(&d.summary).unwrap_or_else(|_| json!({}));
    let headers: Value = serde_json::from_str(&d.headers_json).unwrap_or_else(|_| json!({}));
    v["headers"] = headers;
    v["next_attempt_at"] = json!(d.next_attempt_at);
    match std::str::from_utf8(&d.payload) {
        Ok(text) => {
            v["payload"] = json!(text);
            v["payload_encoding"] = json!("utf-8");
        }
        Err(_) => {
            v["payload"] = json!(base64(&d.payload));
            v["payload_encoding"] = json!("base64");
        }
    }
    v
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
