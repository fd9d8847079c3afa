//! Stored messages as JSON answers. A payload that is not UTF-8 is given as base64 with
//! `payload_encoding: "base64"`, so nothing is lost in the answer either. Listings carry a
//! preview of each payload (`payload_truncated`, `payload_size` say how much is missing); only
//! one message's detail carries it whole.

use serde_json::{json, Value};

use crate::base::text::base64;
use crate::store::{DeadLetter, MessageDetail};

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

/// A preview: like [`put_payload`], but a UTF-8 character cut in two by the preview's end is
/// left out rather than turning the whole preview into base64.
fn put_preview(v: &mut Value, preview: &[u8], size: u64) {
    let truncated = (preview.len() as u64) < size;
    match std::str::from_utf8(preview) {
        Err(e) if truncated && e.error_len().is_none() => {
            put_payload(v, &preview[..e.valid_up_to()]);
        }
        _ => put_payload(v, preview),
    }
    v["payload_truncated"] = json!(truncated);
    v["payload_size"] = json!(size);
}

pub fn dead_letter_json(d: &DeadLetter) -> Value {
    let mut v = json!({
        "id": d.id,
        "received_at": d.received_at,
        "source": d.source,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "failed_at": d.failed_at,
    });
    put_preview(&mut v, &d.payload_preview, d.payload_size);
    v
}

/// A whole message: its summary, stored headers, next attempt and payload.
pub fn detail_json(d: &MessageDetail) -> Value {
    let mut v = serde_json::to_value(&d.summary).unwrap_or_else(|_| json!({}));
    let headers: Value = serde_json::from_str(&d.headers_json).unwrap_or_else(|_| json!({}));
    v["headers"] = headers;
    v["next_attempt_at"] = json!(d.next_attempt_at);
    put_payload(&mut v, &d.payload);
    v["payload_truncated"] = json!(false);
    v["payload_size"] = json!(d.payload.len());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_cut_inside_a_character_stays_text() {
        let mut v = json!({});
        // "é" is two bytes; the preview ends after the first.
        put_preview(&mut v, b"ab\xc3", 10);
        assert_eq!(v["payload"], "ab");
        assert_eq!(v["payload_encoding"], "utf-8");
        assert_eq!(v["payload_truncated"], true);
        assert_eq!(v["payload_size"], 10);
        let mut v = json!({});
        put_preview(&mut v, b"\xff\xfe", 2);
        assert_eq!(v["payload_encoding"], "base64");
        assert_eq!(v["payload_truncated"], false);
    }
}
