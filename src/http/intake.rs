//! `POST /api/v2/webhooks/orders`: the promise lives here. Nothing is answered 2xx until the
//! writer says the message is committed; anything that cannot be stored gets a non-2xx that
//! tells the sender what to do.

use std::io::{ErrorKind, Read};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Map, Value};

use super::router::Call;
use super::{AppState, Reply};
use crate::store::{NewMessage, OpOutcome, WriteOp};
use crate::time::now_ms;

/// How long a handler waits for its commit before answering 503 (the message may still be
/// committed; the sender's retry is then answered `duplicate` if it carries a key).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_IDEMPOTENCY_KEY: usize = 256;
const MAX_STORED_HEADERS: usize = 16 * 1024;
/// Headers never written to disk: secrets, and transport details that say nothing about the
/// webhook (every stored byte is written several times over, see docs/performance.md).
const SKIPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-webhook-token",
    "host",
    "content-length",
    "connection",
    "accept",
    "accept-encoding",
    "transfer-encoding",
    "expect",
];

/// Why a webhook was not stored, for the rejection counters.
enum Refusal {
    Backlog,
    Storage,
    Client,
}

pub fn receive(state: &AppState, call: &mut Call) -> Reply {
    match receive_inner(state, call) {
        Ok(reply) => {
            state.live.ack_latency.record(call.started.elapsed());
            reply
        }
        Err((why, reply)) => {
            let counter = match why {
                Refusal::Backlog => &state.live.rejected_backlog,
                Refusal::Storage => &state.live.rejected_storage,
                Refusal::Client => &state.live.rejected_other,
            };
            counter.fetch_add(1, Relaxed);
            reply
        }
    }
}

/// `Ok` only once the webhook is committed (or is a duplicate of one that is).
fn receive_inner(state: &AppState, call: &mut Call) -> Result<Reply, (Refusal, Reply)> {
    let limit = state.settings.server.max_body_bytes;
    if call.request.body_length().is_some_and(|n| n as u64 > limit) {
        return Err((Refusal::Client, too_large(limit)));
    }
    let backlog = state.live.queue_size();
    if backlog >= state.settings.queue.max_backlog {
        return Err((
            Refusal::Backlog,
            Reply::unavailable(
                "backlog_full",
                &format!(
                    "{backlog} messages are waiting (queue.max_backlog = {}); nothing was stored, retry later",
                    state.settings.queue.max_backlog
                ),
                5,
            ),
        ));
    }
    let idem_key = call
        .header("Idempotency-Key")
        .or_else(|| call.header("webhook-id"))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    if idem_key
        .as_ref()
        .is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err((
            Refusal::Client,
            Reply::error(
                400,
                "bad_request",
                &format!("the idempotency key is longer than {MAX_IDEMPOTENCY_KEY} bytes"),
            ),
        ));
    }
    // Read one byte past the limit so an over-long body without Content-Length is caught.
    let mut payload = Vec::with_capacity(
        call.request
            .body_length()
            .unwrap_or(1024)
            .min(limit as usize),
    );
    if let Err(e) = call
        .request
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut payload)
    {
        let stalled = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
        let reply = if stalled {
            Reply::error(
                408,
                "request_timeout",
                &format!(
                    "the body stopped arriving for {} s (server.idle_timeout_s); nothing was stored",
                    state.settings.server.idle_timeout_s
                ),
            )
        } else {
            Reply::error(
                400,
                "bad_request",
                &format!("could not read the request body: {e}"),
            )
        };
        return Err((Refusal::Client, reply));
    }
    if payload.len() as u64 > limit {
        return Err((Refusal::Client, too_large(limit)));
    }
    let message = NewMessage {
        received_at_ms: now_ms(),
        path: call
            .request
            .url()
            .split('?')
            .next()
            .unwrap_or("")
            .to_string(),
        remote_addr: call.remote.map(|a| a.to_string()),
        headers_json: stored_headers(call.request),
        payload,
        idem_key,
    };
    let stored = |id: i64, status: &str| {
        Ok(Reply::json(
            200,
            &serde_json::json!({"status": status, "id": id}),
        ))
    };
    match state
        .writer
        .submit(WriteOp::Append(message), COMMIT_TIMEOUT)
    {
        Ok(OpOutcome::Appended {
            id,
            duplicate: false,
        }) => stored(id, "queued"),
        Ok(OpOutcome::Appended {
            id,
            duplicate: true,
        }) => stored(id, "duplicate"),
        Ok(other) => Err((
            Refusal::Storage,
            Reply::error(
                500,
                "internal",
                &format!("unexpected storage answer {other:?}"),
            ),
        )),
        Err(e) => {
            log::error!("could not store a webhook: {e}");
            Err((
                Refusal::Storage,
                Reply::unavailable(
                    "storage_unavailable",
                    &format!(
                        "the webhook could not be stored ({e}); nothing was kept, retry later"
                    ),
                    2,
                ),
            ))
        }
    }
}

fn too_large(limit: u64) -> Reply {
    Reply::error(
        413,
        "payload_too_large",
        &format!(
            "the body is larger than server.max_body_bytes ({limit} bytes); nothing was stored"
        ),
    )
}

/// Headers worth keeping for an audit (content type, user agent, signatures, ids), as a
/// JSON object; secrets and transport headers are left out and the total is bounded.
fn stored_headers(request: &tiny_http::Request) -> String {
    let mut map = Map::new();
    let mut total = 0;
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        if SKIPPED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = h.value.as_str();
        total += name.len() + value.len();
        if total > MAX_STORED_HEADERS {
            break;
        }
        map.insert(name, Value::String(value.to_string()));
    }
    Value::Object(map).to_string()
}
