//! How the messages that finished recently ended: a ring of one-minute slots, each counting
//! the messages that ended well (`processed`) and the ones that ended in dead letters. It
//! feeds the "recent success rate" rule in `stats/health.rs`, which is what makes `status`
//! describe the present rather than the life of the database.
//!
//! Each message counts once: when a dead letter leaves the dead state other than by being
//! discarded (an operator's retry, or `reprocess` deriving its order), its failure is taken
//! back out of the window, newest minute first; if it later ends well, that counts as one
//! success. A discarded dead letter stays a failure. The writer records once per committed
//! batch, so a small mutex costs nothing measurable.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the recent success rate is measured over.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
const SLOT_S: u64 = 60;
const SLOTS: usize = (WINDOW.as_secs() / SLOT_S) as usize;

/// Messages that finished in the window: `ok` ended `processed`, `failed` ended in dead
/// letters (and were not retried since).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finished {
    pub ok: u64,
    pub failed: u64,
}

impl Finished {
    pub fn total(self) -> u64 {
        self.ok + self.failed
    }

    /// Percent that ended well, two decimals; `None` when nothing finished.
    pub fn success_rate(self) -> Option<f64> {
        (self.total() > 0)
            .then(|| (self.ok as f64 * 10_000.0 / self.total() as f64).round() / 100.0)
    }
}

pub struct RecentOutcomes {
    origin: Instant,
    /// `(minute since origin, counts)` per slot; a slot whose minute is stale counts as empty.
    slots: Mutex<[(u64, Finished); SLOTS]>,
}

impl RecentOutcomes {
    pub fn new(origin: Instant) -> RecentOutcomes {
        RecentOutcomes {
            origin,
            slots: Mutex::new([(u64::MAX, Finished::default()); SLOTS]),
        }
    }

    /// Records one commit: `ok` messages processed, `failed` gone to dead letters, and
    /// `resolved` dead letters that left the dead state without being discarded.
    pub fn record(&self, ok: u64, failed: u64, resolved: u64) {
        self.record_at(self.origin.elapsed(), ok, failed, resolved);
    }

    pub fn record_at(&self, since_origin: Duration, ok: u64, failed: u64, resolved: u64) {
        if ok == 0 && failed == 0 && resolved == 0 {
            return;
        }
        let minute = since_origin.as_secs() / SLOT_S;
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        let slot = &mut slots[(minute % SLOTS as u64) as usize];
        if slot.0 != minute {
            *slot = (minute, Finished::default());
        }
        slot.1.ok += ok;
        slot.1.failed += failed;
        // Take the resolved failures back out, newest minute first (a dead letter is usually
        // dealt with soon after it died). One that died before the window has nothing to
        // take back.
        let mut left = resolved;
        for back in 0..SLOTS as u64 {
            if left == 0 || back > minute {
                break;
            }
            let m = minute - back;
            let slot = &mut slots[(m % SLOTS as u64) as usize];
            if slot.0 == m {
                let take = left.min(slot.1.failed);
                slot.1.failed -= take;
                left -= take;
            }
        }
    }

    /// What finished over the last [`WINDOW`] (the current minute included).
    pub fn finished(&self) -> Finished {
        self.finished_at(self.origin.elapsed())
    }

    pub fn finished_at(&self, since_origin: Duration) -> Finished {
        let now = since_origin.as_secs() / SLOT_S;
        let oldest = now.saturating_sub(SLOTS as u64 - 1);
        let Ok(slots) = self.slots.lock() else {
            return Finished::default();
        };
        slots
            .iter()
            .filter(|(m, _)| *m != u64::MAX && *m >= oldest && *m <= now)
            .fold(Finished::default(), |acc, (_, f)| Finished {
                ok: acc.ok + f.ok,
                failed: acc.failed + f.failed,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn min(m: f64) -> Duration {
        Duration::from_secs_f64(m * 60.0)
    }

    #[test]
    fn a_retried_dead_letter_counts_once() {
        let w = RecentOutcomes::new(Instant::now());
        w.record_at(min(0.0), 11, 1, 0);
        assert_eq!(w.finished_at(min(0.5)), Finished { ok: 11, failed: 1 });
        // Retried: no longer finished. Dead again: one failure, not two.
        w.record_at(min(1.0), 0, 0, 1);
        assert_eq!(w.finished_at(min(1.0)), Finished { ok: 11, failed: 0 });
        w.record_at(min(1.0), 0, 1, 0);
        assert_eq!(w.finished_at(min(1.0)), Finished { ok: 11, failed: 1 });
        // Retried and processed: one success.
        w.record_at(min(2.0), 1, 0, 1);
        assert_eq!(w.finished_at(min(2.0)), Finished { ok: 12, failed: 0 });
        assert_eq!(w.finished_at(min(2.0)).success_rate(), Some(100.0));
    }

    #[test]
    fn the_window_forgets_after_fifteen_minutes() {
        let w = RecentOutcomes::new(Instant::now());
        assert_eq!(w.finished_at(min(0.0)).success_rate(), None);
        w.record_at(min(0.0), 3, 1, 0);
        w.record_at(min(10.0), 1, 0, 0);
        assert_eq!(w.finished_at(min(14.9)), Finished { ok: 4, failed: 1 });
        assert_eq!(w.finished_at(min(14.9)).success_rate(), Some(80.0));
        assert_eq!(w.finished_at(min(15.0)), Finished { ok: 1, failed: 0 });
        assert_eq!(w.finished_at(min(30.0)), Finished::default());
        // A dead letter that died before the window: nothing to take back.
        w.record_at(min(30.0), 0, 0, 1);
        assert_eq!(w.finished_at(min(30.0)), Finished::default());
    }
}
