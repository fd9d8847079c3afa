//! With several nodes on one database, every node's stats show the cluster's totals. This
//! node's own commits move its figures at once (as with one node); this thread adds what the
//! other nodes' commits moved, read once a second from their counter rows (summed, no table
//! scan), and the live node list. The stats page itself still reads atomics only.

use std::sync::Arc;
use std::time::Duration;

use super::live::ClusterFigures;
use super::LiveStats;
use crate::base::lifecycle::Background;
use crate::store::{CounterDelta, ReadStore};

pub const REFRESH: Duration = Duration::from_secs(1);

/// The cluster-stats thread.
pub struct ClusterRefresher;

impl ClusterRefresher {
    /// `live` was made from a [`ClusterCounters`](crate::store::ClusterCounters) read whose
    /// `others` is `seen`; from then on only this node's commits and this thread move it.
    pub fn start(
        reader: Arc<dyn ReadStore>,
        live: Arc<LiveStats>,
        node: String,
        mut seen: CounterDelta,
    ) -> std::io::Result<Background> {
        refresh_nodes(&*reader, &live, &node);
        let mut refresher = Background::new("cluster-stats");
        refresher.spawn("cluster-stats", move |stop| {
            while !stop.sleep(REFRESH) {
                refresh(&*reader, &live, &node, &mut seen);
                refresh_nodes(&*reader, &live, &node);
            }
        })?;
        Ok(refresher)
    }
}

fn refresh(reader: &dyn ReadStore, live: &LiveStats, node: &str, seen: &mut CounterDelta) {
    match reader.cluster_counters(node) {
        Ok(Some(c)) => {
            live.add_others(&minus(&c.others, seen), c.all.queue_size_peak);
            *seen = c.others;
        }
        Ok(None) => {}
        Err(e) => log::warn!("cluster stats: cannot read the counters: {e}"),
    }
}

fn refresh_nodes(reader: &dyn ReadStore, live: &LiveStats, node: &str) {
    match reader.nodes() {
        Ok(nodes) => {
            if let Ok(mut c) = live.cluster.lock() {
                *c = Some(ClusterFigures {
                    node: node.to_string(),
                    nodes,
                });
            }
        }
        Err(e) => log::warn!("cluster stats: cannot read the node list: {e}"),
    }
}

fn minus(a: &CounterDelta, b: &CounterDelta) -> CounterDelta {
    CounterDelta {
        received: a.received - b.received,
        duplicates: a.duplicates - b.duplicates,
        processed: a.processed - b.processed,
        dead: a.dead - b.dead,
        retried: a.retried - b.retried,
        requeued: a.requeued - b.requeued,
        discarded: a.discarded - b.discarded,
        purged: a.purged - b.purged,
        orders_created: a.orders_created - b.orders_created,
        leases_expired: a.leases_expired - b.leases_expired,
        processing_us: a.processing_us - b.processing_us,
        queued: a.queued - b.queued,
        processing: a.processing - b.processing,
        dead_now: a.dead_now - b.dead_now,
        deliveries_delivered: a.deliveries_delivered - b.deliveries_delivered,
        deliveries_dead: a.deliveries_dead - b.deliveries_dead,
        // The owed deliveries are set from the rows instead (`work::relay::scheduler`).
        ..CounterDelta::default()
    }
}
