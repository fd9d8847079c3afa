//! The sender's idempotency key (`Idempotency-Key`, else `webhook-id`): a message sent again
//! with the same key is answered `duplicate` with the first one's id instead of stored twice.

use super::{Refusal, Step};
use crate::http::call::Call;
use crate::http::response::Reply;

/// Longer keys are refused: the key is indexed, and no sender needs more.
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The key, trimmed; `None` when the sender gave none (or an empty one).
pub(super) fn key(call: &Call) -> Step<Option<String>> {
    let key = call
        .header("Idempotency-Key")
        .or_else(|| call.header("webhook-id"))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match key {
        Some(k) if k.len() > MAX_IDEMPOTENCY_KEY => Err((
            Refusal::Client,
            Reply::error(
                400,
                "bad_request",
                &format!("the idempotency key is longer than {MAX_IDEMPOTENCY_KEY} bytes"),
            ),
        )),
        _ => Ok(key.map(str::to_string)),
    }
}
