//! The one readiness rule. `/readyz`, the `status` of the stats document and the
//! `hookvault_ready` metric all ask [`not_ready`], so a probe, a dashboard and an alert can
//! never disagree about whether the service can take webhooks.

use std::sync::atomic::Ordering::Relaxed;

use super::LiveStats;

/// Why the service is not ready (empty when it is): the last commit failed, the writer is
/// gone, or a worker thread is not running.
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
}
