//! Answers for what went wrong below the handlers (the store refused, or answered something a
//! handler did not ask for), worded once so every endpoint says it the same way.

use super::response::Reply;
use crate::store::{OpOutcome, StoreError};

/// `503` with `Retry-After`: the store could not answer now; the caller should come back.
pub fn storage_error(e: &StoreError) -> Reply {
    Reply::unavailable("storage_unavailable", &e.to_string(), 2)
}

/// `500`: the writer answered an operation with an outcome of another kind (a bug).
pub fn unexpected(outcome: &OpOutcome) -> Reply {
    Reply::error(
        500,
        "internal",
        &format!("unexpected storage answer {outcome:?}"),
    )
}
