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

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::Dispatcher;
use crate::stats::LiveStats;
use crate::store::{Lease, OpOutcome, ReadStore, WriteOp, WriterHandle};
use crate::time::now_ms;

/// The shortest tick, whatever the lease (tests use leases of a second or two).
const MIN_TICK: Duration = Duration::from_millis(100);

/// Everything one tick needs.
pub struct LeaseKeeping {
    pub lease: Lease,
    pub writer: WriterHandle,
    pub reader: Arc<dyn ReadStore>,
    pub dispatcher: Dispatcher,
    pub live: Arc<LiveStats>,
}

pub struct LeaseKeeper {
    thread: JoinHandle<()>,
}

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
}

impl LeaseKeeper {
    /// Starts the thread; it ends when `stop` disconnects.
    pub fn start(keeping: LeaseKeeping, stop: Receiver<()>) -> LeaseKeeper {
        let thread = std::thread::Builder::new()
            .name("leases".into())
            .spawn(move || loop {
                match stop.recv_timeout(keeping.tick()) {
                    Err(RecvTimeoutError::Timeout) => keeping.run_once(),
                    _ => return,
                }
            })
            .expect("spawn lease keeper thread");
        LeaseKeeper { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
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
