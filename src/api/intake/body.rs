//! Reading the body, bounded: never more than `server.max_body_bytes` in memory, and a body
//! that stops arriving ends with `408` instead of holding a handler thread, and an empty one
//! is refused (`empty_body`): there is nothing to store.

use std::io::{ErrorKind, Read};

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::response::Reply;
use crate::api::state::AppState;
use crate::edge::refusal::Refusal as EdgeRefusal;

pub(super) fn read(state: &AppState, call: &mut Call) -> Step<Vec<u8>> {
    let limit = state.settings.server.max_body_bytes;
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
        return Err((Refusal::Client, unreadable(state, &e)));
    }
    if payload.len() as u64 > limit {
        return Err((Refusal::Client, EdgeRefusal::too_large(limit).into()));
    }
    // tiny_http ends a body early, without an error, when its connection closes before the
    // declared length (direct mode; the gate never passes such a body on).
    if let Some(declared) = call.request.body_length() {
        if payload.len() < declared {
            let refusal = EdgeRefusal::incomplete_body(payload.len() as u64, declared as u64);
            return Err((Refusal::Client, refusal.into()));
        }
    }
    if payload.is_empty() {
        return Err((Refusal::Client, EdgeRefusal::empty_body().into()));
    }
    Ok(payload)
}

/// `408` when the body stalled past `server.idle_timeout_s`, else `400`.
fn unreadable(state: &AppState, e: &std::io::Error) -> Reply {
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
        let idle = std::time::Duration::from_secs(state.settings.server.idle_timeout_s);
        EdgeRefusal::stalled(idle).into()
    } else {
        Reply::error(
            400,
            "bad_request",
            &format!("could not read the request body: {e}"),
        )
    }
}
