//! Dead letters for operators: list them, put them back in the queue, discard them. Every
//! action goes through the writer and is recorded with who asked (the caller's address).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::call::Call;
use super::failure::{storage_error, unexpected};
use super::message_json::dead_letter_json;
use super::operator::{actor, retry_all, ACTION_TIMEOUT};
use super::paging::{next_cursor, page_limit};
use super::response::Reply;
use super::source_filter::source_filter;
use super::state::AppState;
use crate::store::{DeadLetterQuery, MessageState, OpOutcome, WriteOp};

/// `GET /api/v2/webhooks/queue/dead-letters`: oldest first, `?after_id=` pages forward,
/// `?source=` keeps one source's.
pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let (limit, after_id, source) = match (
        page_limit(call),
        call.query_num::<i64>("after_id"),
        source_filter(call),
    ) {
        (Ok(l), Ok(a), Ok(s)) => (l, a, s),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let query = DeadLetterQuery {
        after_id,
        limit,
        source,
    };
    match state.reader.dead_letters(&query) {
        Ok(items) => {
            let next = next_cursor(&items, limit, |d| d.id);
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
    retry_all(state, call, op, "dead letters")
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

/// 404 either way (see `docs/operations.md`); the error code tells `not_found` (no such
/// message) from `not_dead` (the message names its state).
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
