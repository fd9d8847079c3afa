//! Operator endpoints: stats, the audit log, dead letters, health, readiness and metrics.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{json, Value};

use super::router::Call;
use super::{AppState, Reply};
use crate::stats::{metrics, LiveStats, QueueView, StatsSnapshot};
use crate::store::{
    DeadLetter, LogQuery, MessageDetail, MessageState, OpOutcome, StoreError, WriteOp,
};

/// Page size when `?limit=` is not given, and the most one page may hold.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// How long an operator action waits for its commit.
const ACTION_TIMEOUT: Duration = Duration::from_secs(10);

pub fn queue_view(state: &AppState) -> QueueView {
    QueueView::of(&state.dispatcher, state.settings.queue.max_backlog)
}

pub fn stats(state: &AppState, _call: &mut Call) -> Reply {
    let snapshot = StatsSnapshot::build(&state.live, queue_view(state), state.reader.file_sizes());
    Reply::json(200, &snapshot)
}

pub fn healthz(_state: &AppState, _call: &mut Call) -> Reply {
    Reply::json(200, &json!({"status": "ok"}))
}

/// Why the service is not ready (empty when it is): the last commit failed, the writer is
/// gone, or a worker thread died.
pub fn not_ready_reasons(live: &LiveStats) -> Vec<String> {
    let mut reasons = Vec::new();
    if !live.storage_ok.load(Relaxed) {
        reasons.push("the last database commit failed".to_string());
    }
    if !live.writer_running.load(Relaxed) {
        reasons.push("the database writer is not running".to_string());
    }
    let (running, total) = (
        live.workers_running.load(Relaxed),
        live.workers_total.load(Relaxed),
    );
    if running != total {
        reasons.push(format!("{running} of {total} workers are running"));
    }
    reasons.extend(live.stuck_work());
    reasons
}

pub fn readyz(state: &AppState, _call: &mut Call) -> Reply {
    let reasons = not_ready_reasons(&state.live);
    if reasons.is_empty() {
        Reply::json(200, &json!({"status": "ready"}))
    } else {
        Reply::json(503, &json!({"status": "not_ready", "reasons": reasons}))
            .with_header("Retry-After", "5")
    }
}

pub fn metrics(state: &AppState, _call: &mut Call) -> Reply {
    let ready = not_ready_reasons(&state.live).is_empty();
    let text = metrics::render(
        &state.live,
        queue_view(state),
        state.reader.file_sizes(),
        ready,
    );
    Reply::text(200, metrics::CONTENT_TYPE, text)
}

/// `?limit=`: default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`] (larger asks are capped), at
/// least 1.
pub(crate) fn page_limit(call: &Call) -> Result<u32, Reply> {
    match call.query_num::<u64>("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(Reply::error(
            400,
            "bad_request",
            &format!("query parameter `limit` must be between 1 and {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n.min(u64::from(MAX_LIMIT)) as u32),
    }
}

pub(crate) fn storage_error(e: &StoreError) -> Reply {
    Reply::unavailable("storage_unavailable", &e.to_string(), 2)
}

/// Who did an operator action, for the `operator_actions` record.
fn actor(call: &Call) -> String {
    call.remote
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into())
}

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

/// `GET /api/v2/webhooks/queue/dead-letters`: oldest first, `?after_id=` pages forward.
pub fn dead_letters(state: &AppState, call: &mut Call) -> Reply {
    let (limit, after_id) = match (page_limit(call), call.query_num::<i64>("after_id")) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match state.reader.dead_letters(after_id, limit) {
        Ok(items) => {
            let next = (items.len() == limit as usize)
                .then(|| items.last().map(|d| d.id))
                .flatten();
            let items: Vec<Value> = items.iter().map(dead_letter_json).collect();
            Reply::json(
                200,
                &json!({
                    "count": items.len(),
                    "items": items,
                    "total": state.live.dead_now.load(Relaxed).max(0),
                    "next_after_id": next,
                }),
            )
        }
        Err(e) => storage_error(&e),
    }
}

/// `POST /api/v2/webhooks/queue/retry-failed`: every dead letter back to `queued`.
pub fn retry_failed(state: &AppState, call: &mut Call) -> Reply {
    let op = WriteOp::RequeueDead {
        id: None,
        actor: actor(call),
    };
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(n)) => {
            if n > 0 {
                log::info!("{} requeued {n} dead letters", actor(call));
            }
            Reply::json(200, &json!({"requeued": n}))
        }
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}

/// `POST /api/v2/webhooks/queue/dead-letters/{id}/retry`.
pub fn retry_one(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let op = WriteOp::RequeueDead {
        id: Some(id),
        actor: actor(call),
    };
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(_)) => {
            log::info!("{} requeued dead letter {id}", actor(call));
            Reply::json(200, &json!({"requeued": 1, "id": id}))
        }
        Ok(OpOutcome::NotApplicable { state }) => not_dead(id, state, "retried"),
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}

/// `DELETE /api/v2/webhooks/queue/dead-letters/{id}`: `dead → discarded`, kept in the log.
pub fn discard(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let op = WriteOp::Discard {
        id,
        actor: actor(call),
    };
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(_)) => {
            log::info!("{} discarded dead letter {id}", actor(call));
            Reply::json(200, &json!({"discarded": 1, "id": id}))
        }
        Ok(OpOutcome::NotApplicable { state }) => not_dead(id, state, "discarded"),
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}

/// 404 either way, as the contract says ("404 if it is not dead"); the error code tells
/// `not_found` (no such message) from `not_dead` (the message names its state).
fn not_dead(id: i64, state: Option<MessageState>, verb: &str) -> Reply {
    match state {
        None => Reply::error(404, "not_found", &format!("no message with id {id}")),
        Some(s) => Reply::error(
            404,
            "not_dead",
            &format!(
                "message {id} is {}, not dead; only dead letters can be {verb}",
                s.as_str()
            ),
        ),
    }
}

fn unexpected(outcome: &OpOutcome) -> Reply {
    Reply::error(
        500,
        "internal",
        &format!("unexpected storage answer {outcome:?}"),
    )
}

/// `GET /api/v2/webhooks/logs`: newest first; `next_before_id` continues the listing.
pub fn logs(state: &AppState, call: &mut Call) -> Reply {
    let (limit, before_id) = match (page_limit(call), call.query_num::<i64>("before_id")) {
        (Ok(l), Ok(b)) => (l, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let status = match call.query("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match MessageState::parse(s) {
            Some(st) => Some(st),
            None => {
                let allowed: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
                return Reply::error(
                    400,
                    "bad_request",
                    &format!("unknown status {s:?}; use one of {}", allowed.join(", ")),
                );
            }
        },
    };
    let query = LogQuery {
        limit,
        before_id,
        status,
    };
    match state.reader.logs(&query) {
        Ok(items) => {
            let next = (items.len() == limit as usize)
                .then(|| items.last().map(|m| m.id))
                .flatten();
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}

pub fn log_entry(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.reader.message(id) {
        Ok(Some(detail)) => {
            let mut v = detail_json(&detail);
            v["actions"] = match state.reader.actions(id) {
                Ok(actions) => json!(actions),
                Err(e) => return storage_error(&e),
            };
            Reply::json(200, &v)
        }
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
    put_payload(&mut v, &d.payload);
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
    use super::{base64, not_ready_reasons};
    use crate::stats::LiveStats;
    use crate::store::DurableCounters;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn readiness_needs_storage_writer_and_every_worker() {
        let live = LiveStats::new(&DurableCounters::default());
        live.writer_running.store(true, Relaxed);
        live.workers_total.store(4, Relaxed);
        live.workers_running.store(4, Relaxed);
        assert!(not_ready_reasons(&live).is_empty());
        live.workers_running.store(3, Relaxed);
        assert_eq!(not_ready_reasons(&live), vec!["3 of 4 workers are running"]);
        live.workers_running.store(4, Relaxed);
        live.storage_ok.store(false, Relaxed);
        live.writer_running.store(false, Relaxed);
        assert_eq!(
            not_ready_reasons(&live),
            vec![
                "the last database commit failed",
                "the database writer is not running"
            ]
        );
    }

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
