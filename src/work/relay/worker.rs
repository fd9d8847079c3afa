//! A relay worker: handed a due target, it takes the target's next delivery through the
//! writer (the take is what keeps one node on a target's queue), sends it, records the
//! outcome, and reports to the scheduler. It never sleeps for a rate limit: pacing is the
//! scheduler's, which simply does not hand over a paused target.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::pacing::Pace;
use super::sender;
use super::waiters::{RelayAnswer, Waiters};
use super::Signal;
use crate::base::mask::mask_target;
use crate::base::time::now_ms;
use crate::store::{DeliveryNext, DeliveryTicket, Lease, OpOutcome, Taken, WriteOp, WriterHandle};
use crate::work::stats::LiveStats;

/// How long a take or an outcome waits for its commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Times an outcome is offered to the writer before the worker gives up on it.
const OUTCOME_TRIES: u32 = 5;

/// What the scheduler hands a worker.
#[derive(Debug, Clone)]
pub struct Work {
    pub target: String,
}

/// What a worker tells the scheduler about a target it was handed.
#[derive(Debug)]
pub struct Report {
    pub target: String,
    pub what: Reported,
}

#[derive(Debug)]
pub enum Reported {
    /// A delivery was taken and its request is starting (another slot may take the next).
    Took,
    /// One delivery was sent; more may be owed.
    Sent { pace: Pace, status: Option<u16> },
    /// Nothing is owed now.
    Idle,
    /// The head of the queue is due at this time (unix ms).
    DueAt(i64),
    /// Another node holds the target.
    HeldElsewhere,
    /// The target is dead until an operator retries.
    Dead,
    /// The store could not be reached: try again a little later.
    Failed,
}

pub struct Context {
    pub writer: WriterHandle,
    pub lease: Lease,
    pub concurrency: u32,
    pub sender: sender::Sender,
    pub jobs: Receiver<Work>,
    pub reports: Sender<Signal>,
    pub waiters: Arc<Waiters>,
    pub live: Arc<LiveStats>,
}

pub fn run(ctx: Context) {
    // The scheduler drops the job channel's sender when it stops.
    while let Ok(work) = ctx.jobs.recv() {
        let what = handle(&ctx, &work.target);
        let report = Report {
            target: work.target,
            what,
        };
        if ctx.reports.send(Signal::Report(report)).is_err() {
            return;
        }
    }
}

fn handle(ctx: &Context, target: &str) -> Reported {
    let take = WriteOp::TakeDeliveries {
        target: target.to_string(),
        limit: ctx.concurrency,
        lease: ctx.lease.clone(),
    };
    let tickets = match ctx.writer.submit(take, COMMIT_TIMEOUT) {
        Ok(OpOutcome::Taken(Taken::Tickets(t))) => t,
        Ok(OpOutcome::Taken(Taken::DueAt(at))) => return Reported::DueAt(at),
        Ok(OpOutcome::Taken(Taken::HeldElsewhere)) => return Reported::HeldElsewhere,
        Ok(OpOutcome::Taken(Taken::TargetDead)) => return Reported::Dead,
        Ok(other) => {
            log::error!("relay: a take was answered {other:?}");
            return Reported::Failed;
        }
        Err(e) => {
            log::warn!(
                "relay: cannot take deliveries of {}: {e}",
                mask_target(target)
            );
            return Reported::Failed;
        }
    };
    let Some(ticket) = tickets.into_iter().next() else {
        return Reported::Idle;
    };
    if ctx.concurrency > 1 {
        let _ = ctx.reports.send(Signal::Report(Report {
            target: target.to_string(),
            what: Reported::Took,
        }));
    }
    send_one(ctx, &ticket)
}

fn send_one(ctx: &Context, t: &DeliveryTicket) -> Reported {
    let answer = ctx.sender.send(t);
    let (next, result) = ctx.sender.judge(t, &answer, now_ms());
    let label = mask_target(&t.target);
    ctx.live.relay.latency.record(answer.latency);
    if answer.pace.rate_limited {
        ctx.live.relay.rate_limited.fetch_add(1, Relaxed);
    }
    // Delivered and dead ones are counted with the commit that records them (a delivery can
    // die without a request: its target dead).
    if matches!(
        next,
        DeliveryNext::RetryAt(_) | DeliveryNext::RateLimited(_)
    ) {
        ctx.live.relay.results[1].fetch_add(1, Relaxed);
    }
    match (&next, &result.error) {
        (DeliveryNext::Delivered, _) => {
            log::debug!("relay: delivery {} to {label}: {:?}", t.id, answer.status)
        }
        (DeliveryNext::RetryAt(_), Some(e)) => {
            log::info!(
                "relay: delivery {} to {label}, attempt {}: {e}; will retry",
                t.id,
                t.attempt
            )
        }
        (DeliveryNext::RateLimited(_), e) => log::debug!(
            "relay: delivery {} to {label}: {}; sent again when the pause ends",
            t.id,
            e.as_deref().unwrap_or("429")
        ),
        (DeliveryNext::TargetDead { .. }, Some(e)) => log::warn!(
            "relay: target {label} is gone ({e}); its deliveries are dead until an operator retries"
        ),
        (_, e) => log::warn!(
            "relay: delivery {} to {label} is dead: {}",
            t.id,
            e.as_deref().unwrap_or("")
        ),
    }
    if let (Some(message_id), Some(status)) = (t.message_id, answer.status) {
        if t.target.contains("wait=true") && status != 429 {
            ctx.waiters.answered(
                message_id,
                RelayAnswer {
                    status,
                    content_type: answer.content_type.clone(),
                    body: answer.body.clone(),
                },
            );
        }
    }
    let dead = matches!(next, DeliveryNext::TargetDead { .. });
    let op = WriteOp::DeliveryOutcome {
        id: t.id,
        attempt: t.attempt,
        result,
        next,
    };
    // Waited for: the target's next take must see this one finished, or order breaks. A
    // failing disk gets a few chances: an unrecorded outcome leaves the delivery `sending`
    // until this node restarts (or, shared, its target lease runs out).
    let mut tries = 0;
    while let Err(e) = ctx.writer.submit(op.clone(), COMMIT_TIMEOUT) {
        tries += 1;
        if tries >= OUTCOME_TRIES {
            log::error!(
                "relay: the outcome of delivery {} was not recorded: {e}",
                t.id
            );
            return Reported::Failed;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    if dead {
        return Reported::Dead;
    }
    Reported::Sent {
        pace: answer.pace,
        status: answer.status,
    }
}
