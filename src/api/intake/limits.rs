//! Refusals that need no body: a declared size over `server.max_body_bytes`, a
//! `Content-Length` tiny_http could not read (direct mode), or a backlog at
//! `queue.max_backlog` (storing more would only grow a queue the workers cannot drain).
//! The framing rules and their wording are the edge's ([`crate::edge::framing`]).

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::response::Reply;
use crate::api::state::AppState;
use crate::edge::framing;
use crate::edge::refusal::Refusal as EdgeRefusal;

pub(super) fn check(state: &AppState, call: &Call) -> Step<()> {
    // In gate mode the gate has already refused these. In direct mode tiny_http reads a
    // Content-Length it cannot parse as "no body", so the body would be taken for the next
    // request.
    if let Some(declared) = call.header("Content-Length") {
        if call.request.body_length().is_none() && call.header("Transfer-Encoding").is_none() {
            let refusal = framing::content_length(declared)
                .err()
                .unwrap_or_else(|| EdgeRefusal::bad_content_length(declared));
            return Err((Refusal::Client, refusal.into()));
        }
    }
    let limit = state.settings.server.max_body_bytes;
    if call.request.body_length().is_some_and(|n| n as u64 > limit) {
        return Err((Refusal::Client, EdgeRefusal::too_large(limit).into()));
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
