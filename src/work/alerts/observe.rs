//! An [`Observation`] from what the stats already hold, plus the one read the stats do not
//! make: the first new dead letter (its error and source), from the newest dead letters.

use super::conditions::{DeadSample, Observation, RelayTargetHealth};
use crate::store::{LogQuery, MessageState, ReadStore};
use crate::work::stats::StatsSnapshot;

/// How many of the newest dead letters are looked at to find the first new one.
const DEAD_LOOKBACK: u32 = 50;

/// Remembers the newest dead letter already seen.
#[derive(Debug, Default)]
pub struct DeadLetterCursor {
    seen_id: Option<i64>,
}

impl DeadLetterCursor {
    /// The oldest dead letter newer than the last call's newest (`None` at the first call,
    /// which only notes where "new" starts, and when it cannot be read).
    pub fn first_new(&mut self, reader: &dyn ReadStore) -> Option<DeadSample> {
        let newest = reader
            .logs(&LogQuery {
                limit: DEAD_LOOKBACK,
                before_id: None,
                status: Some(MessageState::Dead),
                source: None,
            })
            .ok()?;
        let Some(seen) = self.seen_id else {
            self.seen_id = Some(newest.first().map_or(0, |m| m.id));
            return None;
        };
        let first = newest
            .iter()
            .filter(|m| m.id > seen)
            .min_by_key(|m| m.id)
            .map(|m| DeadSample {
                id: m.id,
                error: m.last_error.clone().unwrap_or_default(),
                source: m.source.clone(),
                path: m.path.clone(),
            });
        if let Some(top) = newest.first() {
            self.seen_id = Some(seen.max(top.id));
        }
        first
    }
}

/// The figures of one check.
pub fn observation(
    stats: &StatsSnapshot,
    dead_total: u64,
    first_new_dead: Option<DeadSample>,
    relay_targets: Vec<RelayTargetHealth>,
    at_ms: i64,
) -> Observation {
    Observation {
        at_ms,
        status: stats.status.to_string(),
        status_reasons: stats.status_reasons.clone(),
        dead_total,
        first_new_dead,
        oldest_queued_age_s: Some(stats.oldest_queued_age_s),
        relay_targets,
        disk_free_pct: stats.disk_free_pct,
        db_size_bytes: stats.db_size_bytes,
    }
}

/// A relay target as the relay's figures show it (its masked label, never its URL).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayTargetFigures {
    pub label: String,
    pub pending: i64,
    /// A rate limit or a backoff holds it now.
    pub paused: bool,
    pub last_status: Option<u16>,
    pub dead: bool,
}

impl RelayTargetFigures {
    /// Owed deliveries held back after an answer that was neither a success nor a rate limit
    /// (or no answer at all).
    pub fn failing(&self) -> bool {
        let answered_well = matches!(self.last_status, Some(200..=299 | 429));
        !self.dead && self.pending > 0 && self.paused && !answered_well
    }

    /// Owed deliveries held back after anything but a success, a `429` included: a rate
    /// limit uses no attempt, so a target that only ever answers `429` keeps its deliveries
    /// owed for good; the `relay` condition tells of it once that has gone on long enough.
    pub fn held_back(&self) -> bool {
        let answered_well = matches!(self.last_status, Some(200..=299));
        !self.dead && self.pending > 0 && self.paused && !answered_well
    }

    /// What the stats say of an alert target's deliveries: `dead`, `failing` or `ok`.
    pub fn state(&self) -> &'static str {
        if self.dead {
            "dead"
        } else if self.failing() {
            "failing"
        } else {
            "ok"
        }
    }
}

/// Turns the relay's per-target figures into [`RelayTargetHealth`]: remembers since when
/// each target has been failing (owed deliveries, held back after an answer that was not a
/// success, a rate limit included, or no answer at all: see
/// [`RelayTargetFigures::held_back`]), and leaves out the alert targets, which never alert
/// about themselves.
#[derive(Debug, Default)]
pub struct RelayWatch {
    alert_labels: Vec<String>,
    failing_since: std::collections::BTreeMap<String, i64>,
}

impl RelayWatch {
    pub fn new(alert_labels: Vec<String>) -> RelayWatch {
        RelayWatch {
            alert_labels,
            failing_since: Default::default(),
        }
    }

    pub fn health(
        &mut self,
        targets: &[RelayTargetFigures],
        now_ms: i64,
    ) -> Vec<RelayTargetHealth> {
        let mut out = Vec::new();
        for t in targets {
            if self.alert_labels.contains(&t.label) {
                continue;
            }
            let since = if t.held_back() {
                Some(*self.failing_since.entry(t.label.clone()).or_insert(now_ms))
            } else {
                self.failing_since.remove(&t.label);
                None
            };
            out.push(RelayTargetHealth {
                name: t.label.clone(),
                dead: t.dead,
                failing_since_ms: since,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(
        label: &str,
        pending: i64,
        paused: bool,
        last: Option<u16>,
        dead: bool,
    ) -> RelayTargetFigures {
        RelayTargetFigures {
            label: label.into(),
            pending,
            paused,
            last_status: last,
            dead,
        }
    }

    #[test]
    fn failing_is_remembered_from_its_first_sight_and_alert_targets_are_left_out() {
        let mut w = RelayWatch::new(vec!["http://alerts/***".into()]);
        let t = |pending, paused, last| {
            vec![
                figures("http://backend/***", pending, paused, last, false),
                figures("http://alerts/***", 3, true, Some(500), false),
            ]
        };
        let h = w.health(&t(2, true, Some(503)), 1000);
        assert_eq!(h.len(), 1, "the alert target is left out");
        assert_eq!(h[0].failing_since_ms, Some(1000));
        assert_eq!(
            w.health(&t(2, true, None), 5000)[0].failing_since_ms,
            Some(1000)
        );
        // Rate limited without a success in between goes on counting (a 429 uses no
        // attempt, so only this tells of a target that never stops answering it); a target
        // with nothing owed is not failing.
        assert_eq!(
            w.health(&t(2, true, Some(429)), 6000)[0].failing_since_ms,
            Some(1000)
        );
        assert!(!figures("x", 2, true, Some(429), false).failing());
        assert_eq!(
            w.health(&t(0, false, Some(503)), 7000)[0].failing_since_ms,
            None
        );
        assert_eq!(
            w.health(&t(1, true, Some(500)), 8000)[0].failing_since_ms,
            Some(8000)
        );
        let dead = w.health(&[figures("x", 1, false, Some(404), true)], 9000);
        assert!(dead[0].dead && dead[0].failing_since_ms.is_none());
    }
}
