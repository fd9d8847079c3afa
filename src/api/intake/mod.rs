//! Ingest at a source's path (`POST /api/v2/webhooks/orders`, `/api/v2/webhooks/in/<name>`,
//! or the path a `[[sources]]` table names): the promise lives here. Nothing is answered 2xx
//! until the writer says the message is committed; anything that cannot be stored gets a
//! non-2xx that tells the sender what to do.
//!
//! Ingest is a sequence of steps, each in its own module, each returning the next value or
//! the answer that ends the request. The router has already found the source by its path.
//!
//! 1. `token`: the source's ingest token, if it has one;
//! 2. `limits`: the declared size and the backlog, before anything is read;
//! 3. `idempotency`: the sender's key, a header, checked before the body is read;
//! 4. `body`: the body itself, bounded by `server.max_body_bytes`;
//! 5. `source_size`: the body against the source's own `max_body_bytes`;
//! 6. `verification`: the source's signature scheme, which also names the delivery id that
//!    dedupes when the sender gave no key;
//! 7. `submit`: hand the message to the writer and wait for its commit.
//!
//! A refusal by `token` or `verification` is a `401` with the reason's code, counted per
//! source and kept in the rejections log (`rejections`). A new check goes in as a step of its
//! own between two of these.

mod body;
mod idempotency;
mod limits;
mod rejections;
mod source_size;
mod submit;
mod token;
mod verification;

use std::sync::atomic::Ordering::Relaxed;

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::settings::sources::{Refused, Source};
use crate::store::NewDelivery;

/// Why a webhook was not stored, for the rejection counters.
enum Refusal {
    Backlog,
    Storage,
    Client,
    /// The token or the signature: counted per source and logged.
    Unverified(Refused),
}

/// A step's result: the next value, or why the request ends and its answer.
type Step<T> = Result<T, (Refusal, Reply)>;

pub fn receive(state: &AppState, call: &mut Call, source: &Source) -> Reply {
    match receive_steps(state, call, source) {
        Ok(reply) => {
            state.live.ack_latency.record(call.started.elapsed());
            reply
        }
        Err((why, reply)) => {
            let counter = match why {
                Refusal::Backlog => &state.live.rejected_backlog,
                Refusal::Storage => &state.live.rejected_storage,
                Refusal::Client => &state.live.rejected_other,
                Refusal::Unverified(refused) => {
                    rejections::record(state, call, source, &refused);
                    return reply;
                }
            };
            counter.fetch_add(1, Relaxed);
            reply
        }
    }
}

/// `Ok` only once the webhook is committed (or is a duplicate of one that is).
fn receive_steps(state: &AppState, call: &mut Call, source: &Source) -> Step<Reply> {
    token::check(call, source)?;
    limits::check(state, call)?;
    source_size::check_declared(call, source)?;
    let sender_key = idempotency::key(call)?;
    let payload = body::read(state, call)?;
    source_size::check(&payload, source)?;
    let verified = verification::check(call, source, &payload)?;
    let idem_key = sender_key.or_else(|| idempotency::delivery_key(verified.delivery_id));
    let mut message = submit::message(state, call, source, payload, idem_key);
    message.deliveries = forwards(call, source);
    submit::commit(state, message)
}

/// The source's `forward` targets: a POST of the body as it came, with its content type and
/// the target's extra headers.
fn forwards(call: &Call, source: &Source) -> Vec<NewDelivery> {
    source
        .forward
        .iter()
        .map(|target| NewDelivery {
            target: target.url.clone(),
            kind: crate::store::TargetKind::Http,
            content_type: call.header("Content-Type").map(str::to_string),
            headers_json: crate::store::headers_json(&target.headers),
            body: None,
        })
        .collect()
}

/// A webhook another path received (the Discord relay path), stored as source `source` with
/// `path` (its secret masked) and `deliveries` in the same commit: the same limits, body and
/// commit as ingest (its gate is the caller's; no token or signature here). The stored id and
/// whether it was a duplicate, or the answer that ends the request.
pub fn receive_relayed(
    state: &AppState,
    call: &mut Call,
    source: &str,
    path: String,
    deliveries: Vec<NewDelivery>,
) -> Result<(i64, bool), Reply> {
    match relayed_steps(state, call, source, path, deliveries) {
        Ok(stored) => {
            state.live.ack_latency.record(call.started.elapsed());
            Ok(stored)
        }
        Err((why, reply)) => {
            let counter = match why {
                Refusal::Backlog => &state.live.rejected_backlog,
                Refusal::Storage => &state.live.rejected_storage,
                Refusal::Client | Refusal::Unverified(_) => &state.live.rejected_other,
            };
            counter.fetch_add(1, Relaxed);
            Err(reply)
        }
    }
}

fn relayed_steps(
    state: &AppState,
    call: &mut Call,
    source: &str,
    path: String,
    deliveries: Vec<NewDelivery>,
) -> Step<(i64, bool)> {
    limits::check(state, call)?;
    let idem_key = idempotency::key(call)?;
    let payload = body::read(state, call)?;
    let mut message = submit::relayed_message(state, call, source, payload, idem_key);
    message.path = path;
    message.deliveries = deliveries;
    submit::commit_id(state, message)
}
