//! `/api/v2/deliveries`: the relay's deliveries for operators. Targets are listed masked
//! (`.../api/webhooks/123/***`); the token is never in an answer.

use serde_json::json;

use super::call::Call;
use super::failure::{storage_error, unexpected};
use super::operator::{actor, retry_all, ACTION_TIMEOUT};
use super::paging::{next_cursor, page_limit};
use super::response::Reply;
use super::state::AppState;
use crate::store::{self, DeliveryQuery, DeliveryState, OpOutcome, WriteOp};

/// `GET /api/v2/deliveries`: newest first; `?state=`, `?target=` (as listed), `?limit=`,
/// `?before_id=`.
pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let limit = match page_limit(call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let before_id = match call.query_num::<i64>("before_id") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let wanted = match call.query("state") {
        None => None,
        Some(s) => match DeliveryState::parse(s).filter(|_| s != "sending") {
            Some(st) => Some(st),
            None => {
                return Reply::error(
                    400,
                    "bad_request",
                    &format!("`state` must be pending, delivered, dead or discarded, not {s:?}"),
                )
            }
        },
    };
    let q = DeliveryQuery {
        limit,
        before_id,
        state: wanted,
        target: call.query("target").map(str::to_string),
    };
    match store::deliveries(state.reader.as_ref(), &q) {
        Ok(items) => {
            let next = next_cursor(&items, limit, |d| d.id);
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}

/// `POST /api/v2/deliveries/{id}/retry`: a dead delivery is owed again (its target revived).
pub fn retry_one(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let op = WriteOp::RetryDeliveries {
        id: Some(id),
        actor: actor(call),
    };
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(_)) => {
            log::info!("{} retried delivery {id}", actor(call));
            Reply::json(200, &json!({"requeued": 1, "id": id}))
        }
        Ok(OpOutcome::DeliveryNotApplicable { state: None }) => {
            Reply::error(404, "not_found", &format!("no delivery with id {id}"))
        }
        Ok(OpOutcome::DeliveryNotApplicable { state: Some(s) }) => Reply::error(
            404,
            "not_dead",
            &format!("delivery {id} is {s}, not dead; only dead deliveries can be retried"),
        ),
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}

/// `POST /api/v2/deliveries/retry-failed`: every dead delivery is owed again.
pub fn retry_failed(state: &AppState, call: &mut Call) -> Reply {
    let op = WriteOp::RetryDeliveries {
        id: None,
        actor: actor(call),
    };
    retry_all(state, call, op, "dead deliveries")
}

/// `DELETE /api/v2/deliveries/{id}`: a dead or pending delivery is given up (`discarded`).
/// One whose request is in flight answers `409`: the request cannot be called back, and what
/// the target answers decides whether anything is left to give up, in a moment.
pub fn discard(state: &AppState, call: &mut Call) -> Reply {
    let id = match call.param_id(0) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let op = WriteOp::DiscardDelivery {
        id,
        actor: actor(call),
    };
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(_)) => {
            log::info!("{} discarded delivery {id}", actor(call));
            Reply::json(200, &json!({"discarded": 1, "id": id}))
        }
        Ok(OpOutcome::DeliveryNotApplicable { state: None }) => {
            Reply::error(404, "not_found", &format!("no delivery with id {id}"))
        }
        Ok(OpOutcome::DeliveryNotApplicable { state: Some(s) }) if s == "sending" => Reply::error(
            409,
            "delivery_in_flight",
            &format!(
                "delivery {id} is being sent right now and its request cannot be called back; \
                 once the target answers it is delivered, or owed again or dead and can be \
                 discarded: try again in a moment"
            ),
        ),
        Ok(OpOutcome::DeliveryNotApplicable { state: Some(s) }) => Reply::error(
            404,
            "not_discardable",
            &format!("delivery {id} is {s}; only pending or dead deliveries can be discarded"),
        ),
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}
