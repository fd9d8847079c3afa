//! `/metrics`: the Prometheus text exposition format 0.0.4, built from the same atomics as the
//! stats page (no table is scanned). Every family has `# HELP` and `# TYPE`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::health;
use super::latency::LatencyHistogram;
use super::live::LiveStats;
use super::queue_view::QueueView;
use crate::store::StorageHealth;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of the latency histograms, in seconds.
const LATENCY_BOUNDS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// Bucket bounds of the commit batch size histogram, in operations per transaction.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, "", value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, "gauge", help);
        self.sample(name, "", value);
    }

    /// `bounds` in the histogram's unit (µs for latencies), `le` as written, `scale` turns
    /// the recorded sum into the exposed unit.
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        h: &LatencyHistogram,
        bounds: &[u64],
        le: &[String],
        scale: f64,
    ) {
        self.family(name, "histogram", help);
        let (cumulative, total) = h.cumulative(bounds);
        for (le, count) in le.iter().zip(cumulative) {
            self.sample(&format!("{name}_bucket"), &format!("le=\"{le}\""), count);
        }
        self.sample(&format!("{name}_bucket"), "le=\"+Inf\"", total);
        self.sample(&format!("{name}_sum"), "", h.sum_us() as f64 * scale);
        self.sample(&format!("{name}_count"), "", total);
    }

    fn latency(&mut self, name: &str, help: &str, h: &LatencyHistogram) {
        let bounds: Vec<u64> = LATENCY_BOUNDS_S
            .iter()
            .map(|s| (s * 1e6).round() as u64)
            .collect();
        let le: Vec<String> = LATENCY_BOUNDS_S.iter().map(|s| s.to_string()).collect();
        self.histogram(name, help, h, &bounds, &le, 1e-6);
    }
}

/// Renders every metric.
pub fn render(live: &LiveStats, queue: QueueView, storage: StorageHealth) -> String {
    let ready = health::is_ready(live);
    let mut o = Out(String::with_capacity(8 * 1024));
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);

    o.counter(
        "hookvault_webhooks_received_total",
        "Webhooks stored (duplicates not included); durable across restarts.",
        n(&live.received),
    );
    o.counter(
        "hookvault_webhooks_processed_total",
        "Messages processed successfully; durable.",
        n(&live.processed),
    );
    o.counter(
        "hookvault_webhooks_dead_total",
        "Messages that went to dead letters (retries used up or a permanent error); durable.",
        n(&live.dead),
    );
    o.counter(
        "hookvault_webhooks_retried_total",
        "Failed attempts that were scheduled for another try; durable.",
        n(&live.retried),
    );
    o.counter(
        "hookvault_webhooks_duplicates_total",
        "Webhooks answered as duplicates of an earlier idempotency key; durable.",
        n(&live.duplicates),
    );
    o.counter(
        "hookvault_webhooks_requeued_total",
        "Dead letters put back in the queue by an operator; durable.",
        n(&live.requeued),
    );
    o.counter(
        "hookvault_webhooks_discarded_total",
        "Dead letters discarded by an operator; durable.",
        n(&live.discarded),
    );
    o.counter(
        "hookvault_webhooks_purged_total",
        "Processed messages removed by retention; durable.",
        n(&live.purged),
    );
    o.family(
        "hookvault_webhooks_rejected_total",
        "counter",
        "Ingest requests answered non-2xx since start, by reason (nothing was stored).",
    );
    for (reason, v) in [
        ("backlog_full", &live.rejected_backlog),
        ("storage_unavailable", &live.rejected_storage),
        ("client_error", &live.rejected_other),
    ] {
        o.sample(
            "hookvault_webhooks_rejected_total",
            &format!("reason=\"{reason}\""),
            n(v),
        );
    }
    for (reason, v) in crate::settings::sources::Reason::ALL
        .iter()
        .zip(&live.rejected_unverified)
    {
        o.sample(
            "hookvault_webhooks_rejected_total",
            &format!("reason=\"{}\"", reason.code()),
            n(v),
        );
    }
    o.counter(
        "hookvault_leases_expired_total",
        "Processing messages queued again because their lease ran out with no live worker; durable.",
        n(&live.leases_expired),
    );
    o.counter(
        "hookvault_orders_created_total",
        "Orders created from processed messages; durable.",
        n(&live.orders_created),
    );
    o.counter(
        "hookvault_commit_batches_total",
        "Database transactions committed by the writer since start.",
        n(&live.batches),
    );

    o.gauge(
        "hookvault_queue_size",
        "Messages received and not finished (queued or in flight).",
        live.queue_size(),
    );
    o.gauge(
        "hookvault_queue_size_peak",
        "The highest queue size seen; durable high-water mark.",
        n(&live.queue_size_peak).max(live.queue_size()),
    );
    o.gauge(
        "hookvault_in_flight",
        "Messages a worker is processing now.",
        live.processing.load(Relaxed).max(0),
    );
    o.gauge(
        "hookvault_stale_leases",
        "Processing messages whose lease ran out and that are not queued again yet (stuck work).",
        n(&live.stale_leases),
    );
    o.gauge(
        "hookvault_oldest_processing_age_seconds",
        "How long the oldest attempt in a worker's hands has been running.",
        live.oldest_attempt_age().as_secs(),
    );
    o.gauge(
        "hookvault_oldest_queued_age_seconds",
        "How long the oldest queued message has waited (0 when nothing is queued).",
        storage
            .oldest_queued_at_ms
            .map_or(0, |at| (crate::base::time::now_ms() - at).max(0) / 1000),
    );
    o.gauge(
        "hookvault_dead_letters",
        "Messages in dead letters now.",
        live.dead_now.load(Relaxed).max(0),
    );
    o.gauge(
        "hookvault_workers_running",
        "Worker threads alive.",
        live.workers_running.load(Relaxed),
    );
    o.gauge(
        "hookvault_workers_configured",
        "Worker threads configured.",
        live.workers_total.load(Relaxed),
    );
    o.gauge(
        "hookvault_workers_busy",
        "Worker threads processing a message now.",
        live.workers_busy.load(Relaxed),
    );
    o.gauge(
        "hookvault_channel_length",
        "Messages waiting in the in-memory worker channel.",
        queue.channel_len,
    );
    o.gauge(
        "hookvault_channel_capacity",
        "Capacity of the in-memory worker channel (queue.capacity).",
        queue.channel_capacity,
    );
    o.gauge(
        "hookvault_received_per_second",
        "Webhooks stored per second over the last minute.",
        live.received_rate.per_second(),
    );
    // A figure the backend does not have (PostgreSQL's WAL) or could not read is left out,
    // not reported as zero.
    if let Some(size) = storage.size_bytes {
        o.gauge(
            "hookvault_db_size_bytes",
            "Size of the database (SQLite's file, PostgreSQL's pg_database_size).",
            size,
        );
    }
    if let Some(wal) = storage.wal_bytes {
        o.gauge(
            "hookvault_wal_size_bytes",
            "Size of the SQLite write-ahead log.",
            wal,
        );
    }
    if let Some(disk) = storage.disk {
        o.gauge(
            "hookvault_disk_free_bytes",
            "Space left for hookvault on the file system holding the SQLite database.",
            disk.free_bytes,
        );
        o.gauge(
            "hookvault_disk_size_bytes",
            "Size of the file system holding the SQLite database.",
            disk.total_bytes,
        );
    }
    o.gauge(
        "hookvault_uptime_seconds",
        "Seconds since this process started.",
        live.started.elapsed().as_secs_f64().floor(),
    );
    o.gauge(
        "hookvault_ready",
        "1 when /readyz answers 200 (database writable, all workers running), else 0.",
        u8::from(ready),
    );

    // The stats `status` as one series per value (1 for the current one), so a rule can say
    // `hookvault_status{status="degraded"} == 1`.
    let status = health::assess(live, queue, storage).status;
    o.family(
        "hookvault_status",
        "gauge",
        "1 for the stats status hookvault is in now (healthy, degraded, unhealthy), else 0.",
    );
    for s in ["healthy", "degraded", "unhealthy"] {
        o.sample(
            "hookvault_status",
            &format!("status=\"{s}\""),
            u8::from(s == status),
        );
    }
    o.latency(
        "hookvault_ack_latency_seconds",
        "Time from request start to a 2xx ingest answer (includes the commit).",
        &live.ack_latency,
    );
    o.latency(
        "hookvault_processing_seconds",
        "Time a processor spent on one attempt.",
        &live.processing_time,
    );
    relay(&mut o, live);
    let le: Vec<String> = BATCH_BOUNDS.iter().map(u64::to_string).collect();
    // The batch size histogram records one "microsecond" per operation.
    o.histogram(
        "hookvault_commit_batch_size",
        "Operations committed per database transaction (group commit).",
        &live.batch_size,
        BATCH_BOUNDS,
        &le,
        1.0,
    );
    o.0
}

/// The relay's families: results, `429`s, latency, owed per target (its label masked).
fn relay(o: &mut Out, live: &LiveStats) {
    let r = &live.relay;
    o.family(
        "hookvault_deliveries_total",
        "counter",
        "Delivery requests answered, by what became of the delivery.",
    );
    for (name, n) in super::relay::RESULTS.iter().zip(&r.results) {
        o.sample(
            "hookvault_deliveries_total",
            &format!("result=\"{name}\""),
            n.load(Relaxed),
        );
    }
    o.counter(
        "hookvault_relay_429_total",
        "Relay requests answered 429 (rate limited).",
        r.rate_limited.load(Relaxed),
    );
    o.latency(
        "hookvault_delivery_seconds",
        "Time one relay request took.",
        &r.latency,
    );
    let snapshot = r.snapshot();
    if snapshot.targets.is_empty() {
        // A family without a sample is invalid exposition: none until a target exists.
        return;
    }
    o.family(
        "hookvault_deliveries_pending",
        "gauge",
        "Deliveries owed per target (token masked).",
    );
    for (target, t) in &snapshot.targets {
        let label = target.replace('\\', "\\\\").replace('"', "\\\"");
        o.sample(
            "hookvault_deliveries_pending",
            &format!("target=\"{label}\""),
            t.pending.max(0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DurableCounters;
    use std::time::Duration;

    #[test]
    fn histograms_are_cumulative_and_end_at_the_count() {
        let live = LiveStats::new(&DurableCounters::default());
        for us in [100, 900, 2_000, 40_000, 3_000_000, 100_000_000] {
            live.ack_latency.record(Duration::from_micros(us));
        }
        live.batch_size.record(Duration::from_micros(3));
        assert!(
            render(&live, QueueView::default(), StorageHealth::default())
                .contains("hookvault_ready 0\n")
        );
        live.storage_ok.store(true, Relaxed);
        live.writer_running.store(true, Relaxed);
        let text = render(&live, QueueView::default(), StorageHealth::default());
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("hookvault_ack_latency_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        assert_eq!(*buckets.last().unwrap(), 6);
        assert!(text.contains("hookvault_ack_latency_seconds_bucket{le=\"0.001\"} 2\n"));
        assert!(text.contains("hookvault_ack_latency_seconds_bucket{le=\"60\"} 5\n"));
        assert!(text.contains("hookvault_ack_latency_seconds_count 6\n"));
        assert!(text.contains("hookvault_commit_batch_size_bucket{le=\"2\"} 0\n"));
        assert!(text.contains("hookvault_commit_batch_size_bucket{le=\"4\"} 1\n"));
        assert!(text.contains("hookvault_ready 1\n"));
        assert!(
            text.contains("hookvault_status{status=\"healthy\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("hookvault_status{status=\"degraded\"} 0\n"));
        assert!(text.contains("hookvault_oldest_queued_age_seconds 0\n"));
        assert!(
            !text.contains("hookvault_disk_free_bytes"),
            "unknown: left out"
        );
        let storage = StorageHealth {
            oldest_queued_at_ms: Some(crate::base::time::now_ms() - 90_000),
            disk: Some(crate::base::disk::DiskSpace {
                free_bytes: 5,
                total_bytes: 50,
            }),
            ..StorageHealth::default()
        };
        let text = render(&live, QueueView::default(), storage);
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("hookvault_oldest_queued_age_seconds "))
            .unwrap();
        assert!(matches!(age, "90" | "91"), "{age}");
        assert!(text.contains("hookvault_disk_free_bytes 5\n"));
        assert!(text.contains("hookvault_disk_size_bytes 50\n"));
    }
}
