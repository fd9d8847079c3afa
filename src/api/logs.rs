//! The audit log for operators: every message received, newest first, and one message whole
//! with the operator actions taken on it.

use serde_json::json;

use super::call::Call;
use super::failure::storage_error;
use super::message_json::detail_json;
use super::paging::{next_cursor, page_limit};
use super::response::Reply;
use super::source_filter::source_filter;
use super::state::AppState;
use crate::store::{LogQuery, MessageState};

/// `GET /api/v2/webhooks/logs`: newest first; `next_before_id` continues the listing.
pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let (limit, before_id) = match (page_limit(call), call.query_num::<i64>("before_id")) {
        (Ok(l), Ok(b)) => (l, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let (status, source) = match (status_filter(call), source_filter(call)) {
        (Ok(s), Ok(source)) => (s, source),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let query = LogQuery {
        limit,
        before_id,
        status,
        source,
    };
    match state.reader.logs(&query) {
        Ok(items) => {
            let next = next_cursor(&items, limit, |m| m.id);
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}

/// `?status=`: one of the message states, or none for every message. An empty value is not a
/// state (the OpenAPI document lists them as an `enum`), so it is a `400` like any other.
fn status_filter(call: &Call) -> Result<Option<MessageState>, Reply> {
    let Some(s) = call.query("status") else {
        return Ok(None);
    };
    MessageState::parse(s).map(Some).ok_or_else(|| {
        let allowed: Vec<&str> = MessageState::ALL.iter().map(|s| s.as_str()).collect();
        Reply::error(
            400,
            "bad_request",
            &format!("unknown status {s:?}; use one of {}", allowed.join(", ")),
        )
    })
}

/// `GET /api/v2/webhooks/logs/{id}`.
pub fn one(state: &AppState, call: &mut Call) -> Reply {
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
            v["deliveries"] = match crate::store::deliveries_of_message(state.reader.as_ref(), id) {
                Ok(deliveries) => json!(deliveries),
                Err(e) => return storage_error(&e),
            };
            Reply::json(200, &v)
        }
        Ok(None) => Reply::error(404, "not_found", &format!("no message with id {id}")),
        Err(e) => storage_error(&e),
    }
}
