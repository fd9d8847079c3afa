//! What every operator action shares: who asked (recorded with the change), how long it waits
//! for its commit, and the bulk retry's answer.

use std::time::Duration;

use serde_json::json;

use super::call::Call;
use super::failure::{storage_error, unexpected};
use super::response::Reply;
use super::state::AppState;
use crate::store::{OpOutcome, WriteOp};

/// How long an operator action waits for its commit.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The caller's address, recorded as the actor of the change.
pub fn actor(call: &Call) -> String {
    call.remote
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Commits a bulk retry (`op` with no id) and answers `{"requeued": n}`; `what` names the
/// rows in the log line ("dead letters", "dead deliveries").
pub fn retry_all(state: &AppState, call: &Call, op: WriteOp, what: &str) -> Reply {
    match state.writer.submit(op, ACTION_TIMEOUT) {
        Ok(OpOutcome::Changed(n)) => {
            if n > 0 {
                log::info!("{} retried {n} {what}", actor(call));
            }
            Reply::json(200, &json!({"requeued": n}))
        }
        Ok(other) => unexpected(&other),
        Err(e) => storage_error(&e),
    }
}
