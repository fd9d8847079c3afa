//! The lease keeper: one thread that, every third of `queue.lease_s`, renews the leases of
//! the messages this node's workers hold and puts back to `queued` every `processing` message
//! whose lease ran out with no live worker holding it (one [`WriteOp::RenewLeases`] through
//! the writer), then counts what is still stale for stats and readiness.
//!
//! What a lease means for a running attempt: it lasts as long as the worker does. A message
//! is "held" from the moment it is handed to a worker until its outcome is on disk (the
//! dispatcher's in-flight set), so an attempt that runs long, or an outcome that waits for a
//! failing disk, keeps its lease; a processor that hangs is never re-queued behind its back
//! (it shows as `oldest_processing_age_s` instead). A lease runs out only when nobody renews
//! it: the node died, or the message was left `processing` with no attempt in hand. Such a
//! message is queued again within `lease_s` plus one tick.
//!
//! On a database of its own (SQLite) the keeper sleeps while there is nothing to keep: no
//! message handed over and unfinished, none `processing` on disk, none stale. Nothing can then
//! need renewing or re-queueing until a worker is handed a message, and the dispatcher says
//! so ([`Dispatcher::work_started`]); the keeper then ticks again, the first tick a full tick
//! after the hand-over (the claim's lease lasts `lease_s`, so the renewal is in time, as with
//! any phase of the old fixed tick). So an idle node pays no wake-ups for leases.
//! On a shared database (PostgreSQL) it keeps ticking whatever this node holds: other nodes'
//! expired leases are re-queued by whichever node ticks (docs/cluster.md).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::select;

use super::Dispatcher;
use crate::base::lifecycle::Background;
use crate::base::time::now_ms;
use crate::store::{Lease, OpOutcome, ReadStore, WriteOp, WriterHandle};
use crate::work::stats::LiveStats;

/// The shortest tick, whatever the lease (tests use leases of a second or two).
const MIN_TICK: Duration = Duration::from_millis(100);

/// Everything one tick needs.
pub struct LeaseKeeping {
    pub lease: Lease,
    pub writer: WriterHandle,
    pub reader: Arc<dyn ReadStore>,
    pub dispatcher: Dispatcher,
    pub live: Arc<LiveStats>,
    /// Other nodes share the database: tick even while this node holds nothing.
    pub shared: bool,
}

/// The lease keeper thread.
pub struct LeaseKeeper;

impl LeaseKeeping {
    /// How often leases are renewed: a third of the lease, so two renewals can fail before a
    /// held message's lease runs out.
    pub fn tick(&self) -> Duration {
        (Duration::from_millis(self.lease.duration_ms.max(0) as u64) / 3).max(MIN_TICK)
    }

    /// One tick: renew, re-queue what ran out, count what is stale.
    pub fn run_once(&self) {
        let op = WriteOp::RenewLeases {
            lease: self.lease.clone(),
            live: self.dispatcher.in_flight_ids(),
        };
        match self.writer.submit(op, self.tick()) {
            Ok(OpOutcome::LeasesRenewed { requeued, .. }) if !requeued.is_empty() => {
                log::warn!(
                    "{} processing messages had an expired lease and no live worker; queued again: {}",
                    requeued.len(),
                    list(&requeued)
                );
            }
            Ok(_) => {}
            Err(e) => log::warn!(
                "could not renew leases: {e}; trying again in {:?}",
                self.tick()
            ),
        }
        match self.reader.expired_leases(now_ms()) {
            Ok(n) => self.live.stale_leases.store(n, Relaxed),
            Err(e) => log::warn!("could not count expired leases: {e}"),
        }
    }

    /// Whether there is nothing to keep until work is handed over again: alone on the
    /// database, nothing in flight, nothing `processing` on disk (the gauge counted at start
    /// and moved by every commit; a row left by another node id counts too, and is re-queued
    /// by the ticks once its lease runs out) and nothing stale.
    pub fn may_sleep(&self) -> bool {
        !self.shared
            && self.dispatcher.nothing_in_flight()
            && self.live.processing.load(Relaxed) <= 0
            && self.live.stale_leases.load(Relaxed) == 0
    }
}

impl LeaseKeeper {
    /// Starts the thread; it ends when the component stops.
    pub fn start(keeping: LeaseKeeping) -> std::io::Result<Background> {
        let work_started = keeping.dispatcher.work_started();
        let mut keeper = Background::new("leases");
        keeper.spawn("leases", move |stop| {
            // The first tick comes a tick after start, as always; after each tick the
            // keeper decides whether there is anything left to keep.
            let mut asleep = false;
            loop {
                if asleep {
                    select! {
                        recv(work_started) -> _ => {}
                        recv(stop.receiver()) -> _ => return,
                    }
                }
                if stop.sleep(keeping.tick()) {
                    return;
                }
                // Taken before looking: work handed over after this leaves a token, so
                // the sleep below ends at once.
                while work_started.try_recv().is_ok() {}
                keeping.run_once();
                asleep = keeping.may_sleep();
            }
        })?;
        Ok(keeper)
    }
}

/// Up to ten ids for the log line.
fn list(ids: &[i64]) -> String {
    let shown: Vec<String> = ids.iter().take(10).map(i64::to_string).collect();
    if ids.len() > 10 {
        format!("{}, ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
