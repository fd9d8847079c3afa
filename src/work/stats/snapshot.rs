//! The stats document served at `/api/v2/webhooks/queue/stats` and pushed over the WebSocket
//! (fields and their meaning in `docs/operations.md`). Built from atomics only, so answering
//! never touches the database.

use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::health;
use super::live::LiveStats;
use super::queue_view::QueueView;
use std::collections::BTreeMap;

use crate::store::{NodeStatus, SourceCounters, StorageHealth};

#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    pub status: &'static str,
    pub queue_size: u64,
    pub queue_size_peak: u64,
    pub total_received: u64,
    pub total_processed: u64,
    pub total_failed: u64,
    pub dead_letter_queue_size: u64,
    pub workers_running: usize,
    pub workers_total: usize,
    pub avg_processing_time_ms: f64,
    pub is_running: bool,
    /// Percent of finished messages that ended well, each message once (see
    /// `stats/health.rs`).
    pub success_rate: f64,
    /// The same over the messages that finished in the last 15 minutes (100 when none).
    pub recent_success_rate: f64,
    /// How many messages finished in the last 15 minutes.
    pub recent_finished: u64,
    pub in_flight: u64,
    /// Newly stored messages per second over the last minute.
    pub received_per_s: f64,
    pub queued: u64,
    pub channel_len: usize,
    pub channel_capacity: usize,
    pub total_duplicates: u64,
    pub total_retried: u64,
    pub total_requeued: u64,
    pub total_discarded: u64,
    pub total_orders: u64,
    /// `processing` messages put back to `queued` because their lease ran out; durable.
    pub total_leases_expired: u64,
    /// `processing` messages whose lease ran out and that are not queued again yet.
    pub stale_leases: u64,
    /// How long the oldest attempt in a worker's hands has been running (0 when none is).
    pub oldest_processing_age_s: u64,
    pub rejected: u64,
    pub uptime_s: u64,
    pub ack_latency_p50_ms: f64,
    pub ack_latency_p99_ms: f64,
    pub processing_time_p50_ms: f64,
    pub processing_time_p99_ms: f64,
    pub avg_batch_size: f64,
    /// `null` when unknown (see `StorageHealth`).
    pub db_size_bytes: Option<u64>,
    /// SQLite's WAL; `null` on PostgreSQL, whose WAL is the server's.
    pub wal_size_bytes: Option<u64>,
    pub version: &'static str,
    /// How long the oldest queued message has waited (0 when nothing is queued).
    pub oldest_queued_age_s: u64,
    /// Free space on the database's file system; `null` where it is not local (PostgreSQL)
    /// or cannot be read.
    pub disk_free_bytes: Option<u64>,
    pub disk_free_pct: Option<f64>,
    /// Why `status` is not `healthy` (empty when it is).
    pub status_reasons: Vec<String>,
    /// With several nodes on one database: this node's id, and the live nodes (heartbeat).
    /// Totals and gauges above are then the cluster's; latencies and workers this node's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeStatus>>,
    /// The relay's deliveries: owed, delivered, dead, `429`s seen, per target (masked).
    pub relay: super::RelaySnapshot,
    /// Per source (`[[sources]]`), from the durable per-source totals; filled by the stats
    /// endpoint (`stats::sources`), left out where only the atomics are at hand.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, SourceCounters>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

impl StatsSnapshot {
    pub fn build(live: &LiveStats, queue: QueueView, storage: StorageHealth) -> StatsSnapshot {
        let tally = health::Tally::of(live);
        let processed = tally.succeeded;
        let recent = live.recent.finished();
        let processing_us = live.processing_us_total.load(Relaxed);
        let queue_size = live.queue_size();
        let workers_total = live.workers_total.load(Relaxed);
        let workers_running = live.workers_running.load(Relaxed);
        let batches = live.batches.load(Relaxed);

        let verdict = health::assess(live, queue, storage);
        let cluster = live.cluster.lock().ok().and_then(|c| c.clone());

        StatsSnapshot {
            status: verdict.status,
            queue_size,
            queue_size_peak: live.queue_size_peak.load(Relaxed).max(queue_size),
            total_received: live.received.load(Relaxed),
            total_processed: processed,
            total_failed: tally.failed,
            dead_letter_queue_size: live.dead_now.load(Relaxed).max(0) as u64,
            workers_running,
            workers_total,
            avg_processing_time_ms: if processed == 0 {
                0.0
            } else {
                // Microseconds summed, so sub-millisecond work shows (three decimals).
                (processing_us as f64 / processed as f64).round() / 1000.0
            },
            is_running: live.is_running.load(Relaxed),
            success_rate: tally.success_rate(),
            recent_success_rate: recent.success_rate().unwrap_or(100.0),
            recent_finished: recent.total(),
            in_flight: live.processing.load(Relaxed).max(0) as u64,
            received_per_s: live.received_rate.per_second(),
            queued: live.queued.load(Relaxed).max(0) as u64,
            channel_len: queue.channel_len,
            channel_capacity: queue.channel_capacity,
            total_duplicates: live.duplicates.load(Relaxed),
            total_retried: live.retried.load(Relaxed),
            total_requeued: live.requeued.load(Relaxed),
            total_discarded: live.discarded.load(Relaxed),
            total_orders: live.orders_created.load(Relaxed),
            total_leases_expired: live.leases_expired.load(Relaxed),
            stale_leases: live.stale_leases.load(Relaxed),
            oldest_processing_age_s: live.oldest_attempt_age().as_secs(),
            rejected: live.rejected_backlog.load(Relaxed)
                + live.rejected_storage.load(Relaxed)
                + live.rejected_other.load(Relaxed)
                + (live.rejected_unverified.iter())
                    .map(|c| c.load(Relaxed))
                    .sum::<u64>(),
            uptime_s: live.started.elapsed().as_secs(),
            ack_latency_p50_ms: ms(live.ack_latency.quantile_us(0.5)),
            ack_latency_p99_ms: ms(live.ack_latency.quantile_us(0.99)),
            processing_time_p50_ms: ms(live.processing_time.quantile_us(0.5)),
            processing_time_p99_ms: ms(live.processing_time.quantile_us(0.99)),
            avg_batch_size: if batches == 0 {
                0.0
            } else {
                (live.batch_ops.load(Relaxed) as f64 * 100.0 / batches as f64).round() / 100.0
            },
            db_size_bytes: storage.size_bytes,
            wal_size_bytes: storage.wal_bytes,
            version: env!("CARGO_PKG_VERSION"),
            oldest_queued_age_s: storage.oldest_queued_at_ms.map_or(0, |at| {
                ((crate::base::time::now_ms() - at).max(0) / 1000) as u64
            }),
            disk_free_bytes: storage.disk.map(|d| d.free_bytes),
            disk_free_pct: storage
                .disk
                .and_then(|d| d.free_pct())
                .map(|p| (p * 100.0).round() / 100.0),
            status_reasons: verdict.reasons,
            node: cluster.as_ref().map(|c| c.node.clone()),
            nodes: cluster.map(|c| c.nodes),
            relay: live.relay.snapshot(),
            sources: BTreeMap::new(),
        }
    }
}
