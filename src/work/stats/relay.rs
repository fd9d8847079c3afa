//! The relay's live figures for stats and `/metrics`: deliveries owed (counted from the rows
//! at start, then moved by each commit), delivered (a durable total) and dead (a gauge: stored
//! per node on PostgreSQL, counted from the rows at start on SQLite), `429`s seen, and per
//! target (masked) its pause and last status. With other nodes, `delivered` and `dead` also
//! move by what their commits moved (`work/stats/cluster.rs`), as the other cluster totals do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

use crate::store::{CounterDelta, DurableCounters};
use crate::work::stats::latency::LatencyHistogram;

#[derive(Default)]
pub struct RelayFigures {
    pub owed: AtomicI64,
    pub delivered: AtomicI64,
    pub dead: AtomicI64,
    pub rate_limited: AtomicU64,
    /// Deliveries by result (`success`, `retry`, `dead`) as this node's commits recorded them
    /// (`retry`: a request answered so, counted by the worker; `dead`: however they died).
    pub results: [AtomicU64; 3],
    pub latency: LatencyHistogram,
    targets: Mutex<BTreeMap<String, TargetFigures>>,
}

/// One target as the stats show it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetFigures {
    /// Deliveries owed to it: counted at start, then moved by every commit.
    pub pending: i64,
    /// RFC 3339, while a rate limit or a backoff holds it.
    pub paused_until: Option<String>,
    pub last_status: Option<u16>,
    pub dead: bool,
}

/// The stats' `relay` section.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RelaySnapshot {
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
    pub rate_limited: u64,
    pub targets: BTreeMap<String, TargetFigures>,
}

pub const RESULTS: [&str; 3] = ["success", "retry", "dead"];

impl RelayFigures {
    /// The delivered total and the dead gauge as the counters say at start.
    pub fn new(c: &DurableCounters) -> RelayFigures {
        let figures = RelayFigures::default();
        figures.delivered.store(
            i64::try_from(c.deliveries_delivered).unwrap_or(i64::MAX),
            Relaxed,
        );
        figures.dead.store(
            i64::try_from(c.deliveries_dead).unwrap_or(i64::MAX),
            Relaxed,
        );
        figures
    }

    /// The owed deliveries counted from the rows at start (`store::deliveries_by_state`, the
    /// owed states), and per target (`store::owed_by_label`).
    pub fn count_from(&self, by_state: &[(String, i64)], by_target: &[(String, i64)]) {
        for (state, n) in by_state {
            if matches!(state.as_str(), "pending" | "sending") {
                self.owed.fetch_add(*n, Relaxed);
            }
        }
        for (label, n) in by_target {
            self.update_target(label, |t| t.pending = *n);
        }
    }

    /// A commit's delivery moves: the totals, each target's owed ones, and this node's
    /// results.
    pub fn committed(&self, d: &CounterDelta) {
        self.owed.fetch_add(d.deliveries_owed, Relaxed);
        self.delivered.fetch_add(d.deliveries_delivered, Relaxed);
        self.dead.fetch_add(d.deliveries_dead, Relaxed);
        self.results[0].fetch_add(d.deliveries_delivered.max(0) as u64, Relaxed);
        self.results[2].fetch_add(d.deliveries_died(), Relaxed);
        if d.owed_by_target.is_empty() {
            return;
        }
        if let Ok(mut targets) = self.targets.lock() {
            for (label, n) in &d.owed_by_target {
                targets.entry(label.clone()).or_default().pending += n;
            }
        }
    }

    /// What the other nodes' commits moved (`work/stats/cluster.rs`): the delivered total and the
    /// dead gauge. (The owed ones are set from the rows, [`RelayFigures::recount_owed`].)
    pub fn others_committed(&self, d: &CounterDelta) {
        self.delivered.fetch_add(d.deliveries_delivered, Relaxed);
        self.dead.fetch_add(d.deliveries_dead, Relaxed);
    }

    /// The owed deliveries as counted from the rows just now, per target (masked label) and in
    /// all: with other nodes on the database, whose commits this node does not hear, the
    /// figures are set from the rows (once a second) instead of only moved by this node's.
    pub fn recount_owed(&self, by_target: &BTreeMap<String, i64>) {
        if let Ok(mut targets) = self.targets.lock() {
            for (label, t) in targets.iter_mut() {
                t.pending = by_target.get(label).copied().unwrap_or(0);
            }
            for (label, n) in by_target {
                targets.entry(label.clone()).or_default().pending = *n;
            }
            self.owed.store(by_target.values().sum(), Relaxed);
        }
    }

    /// Which targets are dead now (masked labels, as read from the store): the others lose
    /// the mark, these get it.
    pub fn set_dead(&self, dead: &[String]) {
        if let Ok(mut targets) = self.targets.lock() {
            for (label, t) in targets.iter_mut() {
                t.dead = dead.contains(label);
            }
            for label in dead {
                targets.entry(label.clone()).or_default().dead = true;
            }
        }
    }

    pub fn update_target(&self, label: &str, f: impl FnOnce(&mut TargetFigures)) {
        if let Ok(mut t) = self.targets.lock() {
            f(t.entry(label.to_string()).or_default());
        }
    }

    pub fn snapshot(&self) -> RelaySnapshot {
        RelaySnapshot {
            pending: self.owed.load(Relaxed).max(0),
            delivered: self.delivered.load(Relaxed).max(0),
            dead: self.dead.load(Relaxed).max(0),
            rate_limited: self.rate_limited.load(Relaxed),
            targets: self.targets.lock().map(|t| t.clone()).unwrap_or_default(),
        }
    }
}
