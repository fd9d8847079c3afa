//! An [`Observation`] from what the stats already hold, plus the one read the stats do not
//! make: the first new dead letter (its error and source), from the newest dead letters.

use super::conditions::{DeadSample, Observation, RelayTargetHealth};
use crate::stats::StatsSnapshot;
use crate::store::{LogQuery, MessageState, ReadStore};

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
                source: m.path.clone(),
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
