//! How the service is doing, decided in one place. `/readyz`, the `status` of the stats
//! document and the `hookvault_ready` metric all rest on [`not_ready`], so a probe, a
//! dashboard and an alert can never disagree about whether the service can take webhooks;
//! [`assess`] adds the signs of trouble that do not stop it (`degraded`).
//!
//! Success is counted in messages, each once ([`Tally`]): a message that ended `processed`
//! is a success, one in dead letters now or discarded is a failure; a dead letter that is
//! retried is not finished until its new attempts end. `status` describes the present:
//! dead letters waiting now and the success rate of the last 15 minutes, so it returns to
//! `healthy` once an operator has retried or discarded the failures (rules in
//! `docs/operations.md`).

use std::sync::atomic::Ordering::Relaxed;

use super::live::LiveStats;
use super::outcomes::Finished;
use super::queue_view::QueueView;
use crate::store::StorageHealth;

/// Above this the WAL is considered too large (checkpoints are falling behind).
pub const WAL_DEGRADED_BYTES: u64 = 256 * 1024 * 1024;
/// The share of capacity (channel or backlog) above which the queue counts as congested.
pub const CONGESTED: f64 = 0.8;
/// Below this success rate (percent) over the recent window the service is degraded.
pub const MIN_SUCCESS_RATE: f64 = 95.0;
/// The recent success rate counts only once this many messages finished in the window: over
/// fewer, one bad webhook moves it by five points or more, and a single failure is what the
/// dead-letter rule is for.
pub const MIN_RECENT_FINISHED: u64 = 20;

/// Messages by how they ended, each message once, over the life of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Ended `processed`.
    pub succeeded: u64,
    /// In dead letters now, or discarded by an operator (`total_failed`).
    pub failed: u64,
}

impl Tally {
    pub fn of(live: &LiveStats) -> Tally {
        Tally {
            succeeded: live.processed.load(Relaxed),
            failed: live.dead_now.load(Relaxed).max(0) as u64 + live.discarded.load(Relaxed),
        }
    }

    /// `success_rate`: percent of finished messages that ended well, two decimals; 100 while
    /// nothing has finished.
    pub fn success_rate(self) -> f64 {
        Finished {
            ok: self.succeeded,
            failed: self.failed,
        }
        .success_rate()
        .unwrap_or(100.0)
    }
}

/// The stats `status` and why it is not `healthy` (every rule that fired, unhealthy ones
/// first).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    pub reasons: Vec<String>,
}

/// `unhealthy` when [`not_ready`] finds anything; else `degraded` when the channel or the
/// backlog is congested, dead letters wait for an operator, the recent success rate is low
/// or the WAL is large; else `healthy`.
pub fn assess(live: &LiveStats, queue: QueueView, storage: StorageHealth) -> Verdict {
    let mut unhealthy = not_ready(live);
    let signs = Signs {
        queue_size: live.queue_size(),
        dead_now: live.dead_now.load(Relaxed).max(0) as u64,
        recent: live.recent.finished(),
    };
    let mut degraded = degradation(signs, queue, storage);
    degraded.extend(live.long_attempt());
    let status = if !unhealthy.is_empty() {
        "unhealthy"
    } else if !degraded.is_empty() {
        "degraded"
    } else {
        "healthy"
    };
    unhealthy.extend(degraded);
    Verdict {
        status,
        reasons: unhealthy,
    }
}

/// The present figures the degraded rules look at.
#[derive(Debug, Clone, Copy, Default)]
struct Signs {
    queue_size: u64,
    dead_now: u64,
    recent: Finished,
}

fn degradation(signs: Signs, queue: QueueView, storage: StorageHealth) -> Vec<String> {
    let Signs {
        queue_size,
        dead_now,
        recent,
    } = signs;
    let mut degraded = Vec::new();
    if queue.channel_capacity > 0
        && queue.channel_len as f64 > CONGESTED * queue.channel_capacity as f64
    {
        degraded.push(format!(
            "the worker channel is {}/{} full",
            queue.channel_len, queue.channel_capacity
        ));
    }
    if queue.max_backlog > 0 && queue_size as f64 > CONGESTED * queue.max_backlog as f64 {
        degraded.push(format!(
            "the backlog ({queue_size}) is above 80% of queue.max_backlog"
        ));
    }
    if dead_now > 0 {
        let letters = if dead_now == 1 {
            "letter waits"
        } else {
            "letters wait"
        };
        degraded.push(format!(
            "{dead_now} dead {letters} for an operator (retry or discard)"
        ));
    }
    if let Some(rate) = recent.success_rate() {
        if recent.total() >= MIN_RECENT_FINISHED && rate < MIN_SUCCESS_RATE {
            degraded.push(format!(
                "the success rate of the last 15 minutes ({rate}% of {} messages) is below {MIN_SUCCESS_RATE}%",
                recent.total()
            ));
        }
    }
    if let Some(wal) = storage.wal_bytes.filter(|w| *w > WAL_DEGRADED_BYTES) {
        degraded.push(format!("the WAL is {} MiB", wal >> 20));
    }
    degraded
}

/// Why the service is not ready (empty when it is): the last commit failed, the writer is
/// gone, a worker thread is not running, or work is stuck (a `processing` message whose lease
/// ran out could not be queued again).
pub fn not_ready(live: &LiveStats) -> Vec<String> {
    let mut reasons = Vec::new();
    if !live.storage_ok.load(Relaxed) {
        reasons.push("the last database commit failed".to_string());
    }
    if !live.writer_running.load(Relaxed) {
        reasons.push("the database writer is not running".to_string());
    }
    let (running, total) = (
        live.workers_running.load(Relaxed),
        live.workers_total.load(Relaxed),
    );
    if running < total {
        reasons.push(format!("{running} of {total} workers are running"));
    }
    reasons.extend(live.stuck_work());
    reasons
}

/// Whether the service can take webhooks: [`not_ready`] finds nothing.
pub fn is_ready(live: &LiveStats) -> bool {
    not_ready(live).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DurableCounters;

    #[test]
    fn readiness_needs_storage_writer_and_every_worker() {
        let live = LiveStats::new(&DurableCounters::default());
        live.writer_running.store(true, Relaxed);
        live.workers_total.store(4, Relaxed);
        live.workers_running.store(4, Relaxed);
        assert!(not_ready(&live).is_empty());
        assert!(is_ready(&live));
        live.workers_running.store(3, Relaxed);
        assert_eq!(not_ready(&live), vec!["3 of 4 workers are running"]);
        assert!(!is_ready(&live));
        live.workers_running.store(4, Relaxed);
        live.storage_ok.store(false, Relaxed);
        live.writer_running.store(false, Relaxed);
        assert_eq!(
            not_ready(&live),
            vec![
                "the last database commit failed",
                "the database writer is not running"
            ]
        );
    }

    #[test]
    fn unhealthy_reasons_come_before_degraded_ones() {
        let live = LiveStats::new(&DurableCounters::default());
        live.writer_running.store(true, Relaxed);
        let calm = QueueView {
            channel_len: 0,
            channel_capacity: 10,
            max_backlog: 100,
        };
        let healthy = assess(&live, calm, StorageHealth::default());
        assert_eq!(healthy.status, "healthy");
        assert!(healthy.reasons.is_empty());

        let full = QueueView {
            channel_len: 9,
            ..calm
        };
        live.dead_now.store(2, Relaxed);
        let degraded = assess(&live, full, StorageHealth::default());
        assert_eq!(degraded.status, "degraded");
        assert_eq!(
            degraded.reasons,
            vec![
                "the worker channel is 9/10 full",
                "2 dead letters wait for an operator (retry or discard)"
            ]
        );
        live.dead_now.store(0, Relaxed);

        live.writer_running.store(false, Relaxed);
        let unhealthy = assess(&live, full, StorageHealth::default());
        assert_eq!(unhealthy.status, "unhealthy");
        assert_eq!(
            unhealthy.reasons,
            vec![
                "the database writer is not running",
                "the worker channel is 9/10 full"
            ]
        );
    }

    fn signs(dead_now: u64, ok: u64, failed: u64) -> Signs {
        Signs {
            queue_size: 0,
            dead_now,
            recent: Finished { ok, failed },
        }
    }

    #[test]
    fn the_recent_success_rate_counts_from_twenty_messages() {
        let calm = QueueView {
            channel_len: 0,
            channel_capacity: 10,
            max_backlog: 100,
        };
        let storage = StorageHealth::default();
        // 11 good and 1 discarded: too few to judge a rate by; nothing waits.
        assert!(degradation(signs(0, 11, 1), calm, storage).is_empty());
        // The same failure still waiting is a reason of its own.
        assert_eq!(
            degradation(signs(1, 11, 1), calm, storage),
            vec!["1 dead letter waits for an operator (retry or discard)"]
        );
        // 19 of 20 is 95%: not below. 18 of 20 is.
        assert!(degradation(signs(0, 19, 1), calm, storage).is_empty());
        assert_eq!(
            degradation(signs(0, 18, 2), calm, storage),
            vec!["the success rate of the last 15 minutes (90% of 20 messages) is below 95%"]
        );
        // A long WAL degrades; a backend without one of its own (None) never does.
        let long_wal = StorageHealth {
            size_bytes: Some(1),
            wal_bytes: Some(WAL_DEGRADED_BYTES + (1 << 20)),
            disk: None,
            oldest_queued_at_ms: None,
        };
        assert_eq!(
            degradation(signs(0, 11, 1), calm, long_wal),
            vec!["the WAL is 257 MiB"]
        );
    }

    #[test]
    fn success_counts_messages_once() {
        let live = LiveStats::new(&DurableCounters::default());
        // 11 processed, 1 dead now: 11 of 12.
        live.processed.store(11, Relaxed);
        live.dead.store(1, Relaxed);
        live.dead_now.store(1, Relaxed);
        let t = Tally::of(&live);
        assert_eq!((t.succeeded, t.failed), (11, 1));
        assert_eq!(t.success_rate(), 91.67);
        // Retried, dead again, then discarded: still one failure (three dead events).
        live.dead.store(3, Relaxed);
        live.dead_now.store(0, Relaxed);
        live.discarded.store(1, Relaxed);
        assert_eq!(Tally::of(&live).failed, 1);
        assert_eq!(Tally::of(&live).success_rate(), 91.67);
        // Nothing finished yet: 100.
        assert_eq!(
            Tally::of(&LiveStats::new(&DurableCounters::default())).success_rate(),
            100.0
        );
    }
}
