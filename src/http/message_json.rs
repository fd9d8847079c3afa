//! Stored messages as JSON answers. A payload that is not UTF-8 is given as base64 with
//! `payload_encoding: "base64"`, so nothing is lost in the answer either.

use serde_json::{json, Value};

use crate::store::{DeadLetter, MessageDetail};
use crate::text::base64;

/// Payload as text when it is UTF-8, else base64 with `payload_encoding: "base64"`.
fn put_payload(v: &mut Value, payload: &[u8]) {
    match std::str::from_utf8(payload) {
        Ok(text) => {
            v["payload"] = json!(text);
            v["payload_encoding"] = json!("utf-8");
        }
        Err(_) => {
            v["payload"] = json!(base64(payload));
            v["payload_encoding"] = json!("base64");
        }
    }
}

pub fn dead_letter_json(d: &DeadLetter) -> Value {
    let mut v = json!({
        "id": d.id,
        "received_at": d.received_at,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "failed_at": d.failed_at,
    });
    put_payload(&mut v, &d.payload);
    v
}

/// A whole message: its summary, stored headers, next attempt and payload.
pub fn detail_json(d: &MessageDetail) -> Value {
    let mut v = serde_json::to_value(&d.summary).unwrap_or_else(|_| json!({}));
    let headers: Value = serde_json::from_str(&d.headers_json).unwrap_or_else(|_| json!({}));
    v["headers"] = headers;
    v["next_attempt_at"] = json!(d.next_attempt_at);
    put_payload(&mut v, &d.payload);
    v
}
