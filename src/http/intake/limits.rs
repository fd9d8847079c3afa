//! Refusals that need no body: a declared size over `server.max_body_bytes`, or a backlog at
//! `queue.max_backlog` (storing more would only grow a queue the workers cannot drain).

use super::{Refusal, Step};
use crate::http::call::Call;
use crate::http::response::Reply;
use crate::http::state::AppState;

pub(super) fn check(state: &AppState, call: &Call) -> Step<()> {
    // The edge gate (http/gate.rs) refuses these before tiny_http reads them; this holds
    // for a request that reaches tiny_http another way. tiny_http reads a Content-Length it
    // cannot parse as "no body", so the body would be taken for the next request.
    if let Some(declared) = call.header("Content-Length") {
        if call.request.body_length().is_none() && call.header("Transfer-Encoding").is_none() {
            return Err((
                Refusal::Client,
                Reply::error(
                    400,
                    "bad_content_length",
                    &format!("Content-Length {declared:?} is not a plain number of bytes; nothing was stored"),
                ),
            ));
        }
    }
    let limit = state.settings.server.max_body_bytes;
    if call.request.body_length().is_some_and(|n| n as u64 > limit) {
        return Err((Refusal::Client, too_large(limit)));
    }
    let backlog = state.live.queue_size();
    let max_backlog = state.settings.queue.max_backlog;
    if backlog >= max_backlog {
        return Err((
            Refusal::Backlog,
            Reply::unavailable(
                "backlog_full",
                &format!(
                    "{backlog} messages are waiting (queue.max_backlog = {max_backlog}); nothing was stored, retry later"
                ),
                5,
            ),
        ));
    }
    Ok(())
}

/// `413`: the body is over `server.max_body_bytes`, declared or found while reading.
pub(super) fn too_large(limit: u64) -> Reply {
    Reply::error(
        413,
        "payload_too_large",
        &format!(
            "the body is larger than server.max_body_bytes ({limit} bytes); nothing was stored"
        ),
    )
}
