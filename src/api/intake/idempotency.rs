//! The sender's idempotency key (`Idempotency-Key`, else `webhook-id`, else the delivery id
//! the source's signature scheme names): a message sent again to the same source with the
//! same key is answered `duplicate` with the first one's id instead of stored twice.

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::response::Reply;

/// Longer keys are refused: the key is indexed, and no sender needs more.
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The key, trimmed; `None` when the sender gave none (or an empty one). Both headers are
/// checked, also the one not used: a request the API description calls invalid is refused
/// whichever header would have won.
pub(super) fn key(call: &Call) -> Step<Option<String>> {
    let given = |name| {
        call.header(name)
            .map(str::trim)
            .filter(|k: &&str| !k.is_empty())
    };
    let (primary, fallback) = (given("Idempotency-Key"), given("webhook-id"));
    for (name, value) in [("Idempotency-Key", primary), ("webhook-id", fallback)] {
        if value.is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY) {
            return Err((
                Refusal::Client,
                Reply::error(
                    400,
                    "bad_request",
                    &format!("the {name} header is longer than {MAX_IDEMPOTENCY_KEY} bytes"),
                ),
            ));
        }
    }
    Ok(primary.or(fallback).map(str::to_string))
}

/// The scheme's delivery id as a dedupe key; one too long to index is not used (the webhook
/// is still stored: its signature passed).
pub(super) fn delivery_key(delivery_id: Option<String>) -> Option<String> {
    delivery_id.filter(|id| id.len() <= MAX_IDEMPOTENCY_KEY)
}
