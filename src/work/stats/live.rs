use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{LatencyHistogram, RateWindow, RecentOutcomes};
use crate::store::{CounterDelta, DurableCounters, NodeStatus};

/// Figures shared by every thread. Written with relaxed atomics: each figure is exact on its
/// own; a reader may see one a moment ahead of another, which a stats page can live with.
pub struct LiveStats {
    pub started: Instant,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub processed: AtomicU64,
    pub dead: AtomicU64,
    pub retried: AtomicU64,
    pub requeued: AtomicU64,
    pub discarded: AtomicU64,
    pub purged: AtomicU64,
    pub leases_expired: AtomicU64,
    pub orders_created: AtomicU64,
    /// Time spent in successful attempts, in microseconds.
    pub processing_us_total: AtomicU64,
    pub queued: AtomicI64,
    pub processing: AtomicI64,
    pub dead_now: AtomicI64,
    pub queue_size_peak: AtomicU64,
    /// Ingest answers that were not 2xx, by reason.
    pub rejected_backlog: AtomicU64,
    pub rejected_storage: AtomicU64,
    pub rejected_other: AtomicU64,
    /// Refused by a source's token or signature check, by [`Reason`](crate::settings::sources::Reason)
    /// in the order of `Reason::ALL`.
    pub rejected_unverified: [AtomicU64; 4],
    pub batches: AtomicU64,
    pub batch_ops: AtomicU64,
    pub ack_latency: LatencyHistogram,
    pub processing_time: LatencyHistogram,
    pub batch_size: LatencyHistogram,
    /// Newly stored messages per second over the last minute (fed at commit time).
    pub received_rate: RateWindow,
    /// How the messages that finished in the last 15 minutes ended (the status rule).
    pub recent: RecentOutcomes,
    pub workers_total: AtomicUsize,
    pub workers_running: AtomicUsize,
    pub workers_busy: AtomicUsize,
    /// False after a commit failed, true again after one succeeds (readiness).
    pub storage_ok: AtomicBool,
    pub writer_running: AtomicBool,
    pub is_running: AtomicBool,
    /// `processing` messages whose lease ran out and that the last lease tick could not put
    /// back (a failing disk): stuck work, which readiness reports while it lasts.
    pub stale_leases: AtomicU64,
    /// `queue.lease_s`: an attempt running longer than this is reported (not re-queued).
    pub lease_s: AtomicU64,
    /// Attempts in the workers' hands now: message id → when the attempt started.
    attempts: Mutex<HashMap<i64, Instant>>,
    /// Set when several nodes share the database: this node and the live ones.
    pub cluster: Mutex<Option<ClusterFigures>>,
    /// The relay's deliveries (the stats' `relay` section).
    pub relay: super::RelayFigures,
}

/// Who shares the database, for the stats page.
#[derive(Debug, Clone, Default)]
pub struct ClusterFigures {
    pub node: String,
    pub nodes: Vec<NodeStatus>,
}

impl LiveStats {
    pub fn new(c: &DurableCounters) -> LiveStats {
        let started = Instant::now();
        LiveStats {
            started,
            received: AtomicU64::new(c.received),
            duplicates: AtomicU64::new(c.duplicates),
            processed: AtomicU64::new(c.processed),
            dead: AtomicU64::new(c.dead),
            retried: AtomicU64::new(c.retried),
            requeued: AtomicU64::new(c.requeued),
            discarded: AtomicU64::new(c.discarded),
            purged: AtomicU64::new(c.purged),
            leases_expired: AtomicU64::new(c.leases_expired),
            orders_created: AtomicU64::new(c.orders_created),
            processing_us_total: AtomicU64::new(c.processing_us_total),
            // Counted after recovery: what is still `processing` is leased elsewhere.
            queued: AtomicI64::new(c.queued as i64),
            processing: AtomicI64::new(c.processing as i64),
            dead_now: AtomicI64::new(c.dead_now as i64),
            queue_size_peak: AtomicU64::new(c.queue_size_peak),
            rejected_backlog: AtomicU64::new(0),
            rejected_storage: AtomicU64::new(0),
            rejected_other: AtomicU64::new(0),
            rejected_unverified: Default::default(),
            batches: AtomicU64::new(0),
            batch_ops: AtomicU64::new(0),
            ack_latency: LatencyHistogram::default(),
            processing_time: LatencyHistogram::default(),
            batch_size: LatencyHistogram::default(),
            received_rate: RateWindow::new(started),
            recent: RecentOutcomes::new(started),
            workers_total: AtomicUsize::new(0),
            workers_running: AtomicUsize::new(0),
            workers_busy: AtomicUsize::new(0),
            storage_ok: AtomicBool::new(true),
            writer_running: AtomicBool::new(false),
            is_running: AtomicBool::new(false),
            stale_leases: AtomicU64::new(0),
            lease_s: AtomicU64::new(0),
            attempts: Mutex::new(HashMap::new()),
            cluster: Mutex::new(None),
            relay: super::RelayFigures::new(c),
        }
    }

    /// Work stuck beyond its lease, for readiness and the stats status: `processing` messages
    /// whose lease ran out and that could not be put back (`None` when there are none).
    pub fn stuck_work(&self) -> Option<String> {
        match self.stale_leases.load(Relaxed) {
            0 => None,
            n => Some(format!(
                "{n} processing messages have an expired lease and could not be queued again"
            )),
        }
    }

    /// An attempt running longer than the lease (a slow or hung processor): reported, not
    /// re-queued, since its worker still holds it (`None` when there is none).
    pub fn long_attempt(&self) -> Option<String> {
        let lease_s = self.lease_s.load(Relaxed);
        let age = self.oldest_attempt_age().as_secs();
        (lease_s > 0 && age > lease_s).then(|| {
            format!(
                "an attempt has been running for {age}s, longer than queue.lease_s ({lease_s}s)"
            )
        })
    }

    /// A worker started an attempt on message `id`.
    pub fn attempt_started(&self, id: i64) {
        if let Ok(mut a) = self.attempts.lock() {
            a.insert(id, Instant::now());
        }
    }

    /// The worker is done with the attempt on message `id`.
    pub fn attempt_ended(&self, id: i64) {
        if let Ok(mut a) = self.attempts.lock() {
            a.remove(&id);
        }
    }

    /// How long the oldest attempt in a worker's hands has been running (zero when none is).
    pub fn oldest_attempt_age(&self) -> Duration {
        self.attempts
            .lock()
            .ok()
            .and_then(|a| a.values().min().map(Instant::elapsed))
            .unwrap_or_default()
    }

    /// Called by the writer right after a commit.
    pub fn apply(&self, d: &CounterDelta) {
        let add = |a: &AtomicU64, v: i64| {
            if v > 0 {
                a.fetch_add(v as u64, Relaxed);
            }
        };
        self.add_totals(d, add);
        if d.received > 0 {
            self.received_rate.record(d.received as u64);
        }
        // Dead letters that left the dead state other than by a discard (retried, or their
        // order derived by `reprocess`): no longer failures.
        let resolved = (d.dead - d.dead_now - d.discarded).max(0) as u64;
        self.recent
            .record(d.processed.max(0) as u64, d.dead.max(0) as u64, resolved);
        self.queued.fetch_add(d.queued, Relaxed);
        self.processing.fetch_add(d.processing, Relaxed);
        self.dead_now.fetch_add(d.dead_now, Relaxed);
        self.queue_size_peak.fetch_max(self.queue_size(), Relaxed);
    }

    /// Several nodes share the database: the gauges at start are the cluster's as read (this
    /// node's own leases were just re-queued; the others' attempts still run).
    pub fn set_gauges(&self, c: &DurableCounters) {
        self.queued.store(c.queued as i64, Relaxed);
        self.processing.store(c.processing as i64, Relaxed);
        self.dead_now.store(c.dead_now as i64, Relaxed);
    }

    /// Moves every durable total by `d` with `add` (this node's commits only grow them; other
    /// nodes' rows, read back, may also shrink them), so the list of totals is written once.
    fn add_totals(&self, d: &CounterDelta, add: impl Fn(&AtomicU64, i64)) {
        for (total, by) in [
            (&self.received, d.received),
            (&self.duplicates, d.duplicates),
            (&self.processed, d.processed),
            (&self.dead, d.dead),
            (&self.retried, d.retried),
            (&self.requeued, d.requeued),
            (&self.discarded, d.discarded),
            (&self.purged, d.purged),
            (&self.leases_expired, d.leases_expired),
            (&self.orders_created, d.orders_created),
            (&self.processing_us_total, d.processing_us),
        ] {
            add(total, by);
        }
    }

    /// Several nodes share the database: what the other nodes' commits moved since the last
    /// look. This node's own commits move the figures through [`LiveStats::apply`]; the two
    /// never count the same commit, so the sum is the cluster's.
    pub fn add_others(&self, d: &CounterDelta, peak: u64) {
        let add = |a: &AtomicU64, v: i64| {
            if v >= 0 {
                a.fetch_add(v as u64, Relaxed);
            } else {
                a.fetch_sub(v.unsigned_abs().min(a.load(Relaxed)), Relaxed);
            }
        };
        self.add_totals(d, add);
        self.queued.fetch_add(d.queued, Relaxed);
        self.processing.fetch_add(d.processing, Relaxed);
        self.dead_now.fetch_add(d.dead_now, Relaxed);
        self.relay.others_committed(d);
        self.queue_size_peak.fetch_max(peak, Relaxed);
    }

    /// Messages received and not finished: waiting on disk, in the channel, or in a worker.
    pub fn queue_size(&self) -> u64 {
        (self.queued.load(Relaxed) + self.processing.load(Relaxed)).max(0) as u64
    }
}
