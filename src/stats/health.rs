//! How the service is doing, decided in one place. `/readyz`, the `status` of the stats
//! document and the `hookvault_ready` metric all rest on [`not_ready`], so a probe, a
//! dashboard and an alert can never disagree about whether the service can take webhooks;
//! [`assess`] adds the signs of trouble that do not stop it (`degraded`).

use std::sync::atomic::Ordering::Relaxed;

use super::live::LiveStats;
use super::queue_view::QueueView;
use crate::store::FileSizes;

/// Above this the WAL is considered too large (checkpoints are falling behind).
pub const WAL_DEGRADED_BYTES: u64 = 256 * 1024 * 1024;
/// The share of capacity (channel or backlog) above which the queue counts as congested.
pub const CONGESTED: f64 = 0.8;
/// Below this success rate (percent) the service is degraded.
pub const MIN_SUCCESS_RATE: f64 = 95.0;

/// The stats `status` and why it is not `healthy` (every rule that fired, unhealthy ones
/// first).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    pub reasons: Vec<String>,
}

/// `unhealthy` when [`not_ready`] finds anything; else `degraded` when the channel or the
/// backlog is congested, the success rate (percent) is low or the WAL is large; else
/// `healthy`.
pub fn assess(live: &LiveStats, queue: QueueView, files: FileSizes, success_rate: f64) -> Verdict {
    let mut unhealthy = not_ready(live);
    let mut degraded = degradation(live.queue_size(), queue, files, success_rate);
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

fn degradation(
    queue_size: u64,
    queue: QueueView,
    files: FileSizes,
    success_rate: f64,
) -> Vec<String> {
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
    if success_rate < MIN_SUCCESS_RATE {
        degraded.push(format!(
            "the success rate ({success_rate}%) is below {MIN_SUCCESS_RATE}%"
        ));
    }
    if files.wal_size_bytes > WAL_DEGRADED_BYTES {
        degraded.push(format!("the WAL is {} MiB", files.wal_size_bytes >> 20));
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
        let healthy = assess(&live, calm, FileSizes::default(), 100.0);
        assert_eq!(healthy.status, "healthy");
        assert!(healthy.reasons.is_empty());

        let full = QueueView {
            channel_len: 9,
            ..calm
        };
        let degraded = assess(&live, full, FileSizes::default(), 90.0);
        assert_eq!(degraded.status, "degraded");
        assert_eq!(
            degraded.reasons,
            vec![
                "the worker channel is 9/10 full",
                "the success rate (90%) is below 95%"
            ]
        );

        live.writer_running.store(false, Relaxed);
        let unhealthy = assess(&live, full, FileSizes::default(), 100.0);
        assert_eq!(unhealthy.status, "unhealthy");
        assert_eq!(
            unhealthy.reasons,
            vec![
                "the database writer is not running",
                "the worker channel is 9/10 full"
            ]
        );
    }
}
