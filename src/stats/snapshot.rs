//! The stats document served at `/api/v2/webhooks/queue/stats` and pushed over the WebSocket
//! (fields and their meaning in `docs/operations.md`). Built from atomics only, so answering
//! never touches the database.

use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::health;
use super::live::LiveStats;
use super::queue_view::QueueView;
use crate::store::{FileSizes, NodeStatus};

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
    pub success_rate: f64,
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
    pub rejected: u64,
    pub uptime_s: u64,
    pub ack_latency_p50_ms: f64,
    pub ack_latency_p99_ms: f64,
    pub processing_time_p50_ms: f64,
    pub processing_time_p99_ms: f64,
    pub avg_batch_size: f64,
    pub db_size_bytes: u64,
    pub wal_size_bytes: u64,
    pub version: &'static str,
    /// Why `status` is not `healthy` (empty when it is).
    pub status_reasons: Vec<String>,
    /// With several nodes on one database: this node's id, and the live nodes (heartbeat).
    /// Totals and gauges above are then the cluster's; latencies and workers this node's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeStatus>>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

impl StatsSnapshot {
    pub fn build(live: &LiveStats, queue: QueueView, files: FileSizes) -> StatsSnapshot {
        let processed = live.processed.load(Relaxed);
        let dead = live.dead.load(Relaxed);
        let finished = processed + dead;
        let success_rate = if finished == 0 {
            100.0
        } else {
            (processed as f64 * 10_000.0 / finished as f64).round() / 100.0
        };
        let processing_ms = live.processing_ms_total.load(Relaxed);
        let queue_size = live.queue_size();
        let workers_total = live.workers_total.load(Relaxed);
        let workers_running = live.workers_running.load(Relaxed);
        let batches = live.batches.load(Relaxed);

        let verdict = health::assess(live, queue, files, success_rate);
        let cluster = live.cluster.lock().ok().and_then(|c| c.clone());

        StatsSnapshot {
            status: verdict.status,
            queue_size,
            queue_size_peak: live.queue_size_peak.load(Relaxed).max(queue_size),
            total_received: live.received.load(Relaxed),
            total_processed: processed,
            total_failed: dead,
            dead_letter_queue_size: live.dead_now.load(Relaxed).max(0) as u64,
            workers_running,
            workers_total,
            avg_processing_time_ms: if processed == 0 {
                0.0
            } else {
                (processing_ms as f64 * 100.0 / processed as f64).round() / 100.0
            },
            is_running: live.is_running.load(Relaxed),
            success_rate,
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
            rejected: live.rejected_backlog.load(Relaxed)
                + live.rejected_storage.load(Relaxed)
                + live.rejected_other.load(Relaxed),
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
            db_size_bytes: files.db_size_bytes,
            wal_size_bytes: files.wal_size_bytes,
            version: env!("CARGO_PKG_VERSION"),
            status_reasons: verdict.reasons,
            node: cluster.as_ref().map(|c| c.node.clone()),
            nodes: cluster.map(|c| c.nodes),
        }
    }
}
