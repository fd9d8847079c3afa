//! `POST /api/v2/webhooks/orders`: the promise lives here. Nothing is answered 2xx until the
//! writer says the message is committed; anything that cannot be stored gets a non-2xx that
//! tells the sender what to do.
//!
//! Ingest is a sequence of steps, each in its own module, each returning the next value or
//! the answer that ends the request:
//!
//! 1. `limits`: the declared size and the backlog, before anything is read;
//! 2. `idempotency`: the sender's key, a header, checked before the body is read;
//! 3. `body`: the body itself, bounded by `server.max_body_bytes`;
//! 4. `verification`: whether the body is really from the sender (the place for signature
//!    checks; it accepts everything today);
//! 5. `submit`: hand the message to the writer and wait for its commit.
//!
//! A new check goes in as a step of its own between two of these.

mod body;
mod idempotency;
mod limits;
mod submit;
mod verification;

use std::sync::atomic::Ordering::Relaxed;

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::store::NewDelivery;

/// Why a webhook was not stored, for the rejection counters.
enum Refusal {
    Backlog,
    Storage,
    Client,
}

/// A step's result: the next value, or why the request ends and its answer.
type Step<T> = Result<T, (Refusal, Reply)>;

pub fn receive(state: &AppState, call: &mut Call) -> Reply {
    let steps = receive_steps(state, call);
    counted(state, call, steps).unwrap_or_else(|reply| reply)
}

/// The same steps for a webhook another path received (the Discord relay path): stored with
/// `path` (its secret masked) and `deliveries` in the same commit. The stored id and whether
/// it was a duplicate, or the answer that ends the request.
pub fn receive_relayed(
    state: &AppState,
    call: &mut Call,
    path: String,
    deliveries: Vec<NewDelivery>,
) -> Result<(i64, bool), Reply> {
    let steps = relayed_steps(state, call, path, deliveries);
    counted(state, call, steps)
}

fn relayed_steps(
    state: &AppState,
    call: &mut Call,
    path: String,
    deliveries: Vec<NewDelivery>,
) -> Step<(i64, bool)> {
    limits::check(state, call)?;
    let idem_key = idempotency::key(call)?;
    let payload = body::read(state, call)?;
    verification::check(state, call, &payload)?;
    let mut message = submit::message(state, call, payload, idem_key);
    message.path = path;
    message.deliveries = deliveries;
    submit::commit_id(state, message)
}

/// Counts the outcome: the ack latency of a stored webhook, or the refusal's reason.
fn counted<T>(state: &AppState, call: &Call, steps: Step<T>) -> Result<T, Reply> {
    match steps {
        Ok(v) => {
            state.live.ack_latency.record(call.started.elapsed());
            Ok(v)
        }
        Err((why, reply)) => {
            let counter = match why {
                Refusal::Backlog => &state.live.rejected_backlog,
                Refusal::Storage => &state.live.rejected_storage,
                Refusal::Client => &state.live.rejected_other,
            };
            counter.fetch_add(1, Relaxed);
            Err(reply)
        }
    }
}

/// `Ok` only once the webhook is committed (or is a duplicate of one that is).
fn receive_steps(state: &AppState, call: &mut Call) -> Step<Reply> {
    limits::check(state, call)?;
    let idem_key = idempotency::key(call)?;
    let payload = body::read(state, call)?;
    verification::check(state, call, &payload)?;
    let message = submit::message(state, call, payload, idem_key);
    submit::commit(state, message)
}
