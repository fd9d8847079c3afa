//! The live figures a commit moves: counters by the batch's delta, batch sizes, and storage
//! health for readiness. They are exact only because they move after the commit, from the
//! same delta the store added to its durable counters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::store::CounterDelta;
use crate::work::stats::LiveStats;

pub struct LiveFigures {
    live: Arc<LiveStats>,
}

impl LiveFigures {
    pub fn new(live: Arc<LiveStats>) -> LiveFigures {
        LiveFigures { live }
    }

    pub fn writer_running(&self, running: bool) {
        self.live.writer_running.store(running, Relaxed);
    }

    /// The running maximum of the queue size, stored with each commit as a high-water mark.
    pub fn queue_size_peak(&self) -> u64 {
        self.live
            .queue_size_peak
            .load(Relaxed)
            .max(self.live.queue_size())
    }

    pub fn batch_committed(&self, ops: usize, delta: &CounterDelta) {
        self.live.storage_ok.store(true, Relaxed);
        self.live.apply(delta);
        self.live.relay.committed(delta);
        self.live.batches.fetch_add(1, Relaxed);
        self.live.batch_ops.fetch_add(ops as u64, Relaxed);
        // The histogram counts in microseconds; one op is recorded as one microsecond.
        self.live
            .batch_size
            .record(Duration::from_micros(ops as u64));
    }

    /// Readiness says "the last database commit failed" until the next one succeeds.
    pub fn commit_failed(&self) {
        self.live.storage_ok.store(false, Relaxed);
    }
}
