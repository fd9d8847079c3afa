//! Reading the body, bounded: never more than `server.max_body_bytes` in memory, and a body
//! that stops arriving ends with `408` instead of holding a handler thread, and an empty one
//! is refused (`empty_body`): there is nothing to store.

use std::io::{ErrorKind, Read};

use super::limits::too_large;
use super::{Refusal, Step};
use crate::http::call::Call;
use crate::http::response::Reply;
use crate::http::state::AppState;

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
        return Err((Refusal::Client, too_large(limit)));
    }
    // tiny_http ends a body early, without an error, when its connection closes before the
    // declared length (the gate never passes such a body on; this holds for anything that
    // reaches tiny_http another way).
    if let Some(declared) = call.request.body_length() {
        if payload.len() < declared {
            return Err((
                Refusal::Client,
                Reply::error(
                    400,
                    "incomplete_body",
                    &format!(
                        "the body ended after {} of {declared} bytes; nothing was stored",
                        payload.len()
                    ),
                ),
            ));
        }
    }
    if payload.is_empty() {
        return Err((
            Refusal::Client,
            Reply::error(
                400,
                "empty_body",
                "the request has no body; a webhook is its body, so nothing was stored",
            ),
        ));
    }
    Ok(payload)
}

/// `408` when the body stalled past `server.idle_timeout_s`, else `400`.
fn unreadable(state: &AppState, e: &std::io::Error) -> Reply {
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
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
    }
}
