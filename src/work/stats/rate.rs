//! Messages per second over the last minute: a ring of 60 one-second slots. The writer records
//! once per committed batch (not once per message), so a small mutex costs nothing measurable
//! and keeps the slot rollover exact.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const SLOTS: usize = 60;

pub struct RateWindow {
    origin: Instant,
    /// `(second since origin, count)` per slot; a slot whose second is stale counts as 0.
    slots: Mutex<[(u64, u64); SLOTS]>,
}

impl Default for RateWindow {
    fn default() -> Self {
        RateWindow::new(Instant::now())
    }
}

impl RateWindow {
    pub fn new(origin: Instant) -> RateWindow {
        RateWindow {
            origin,
            slots: Mutex::new([(u64::MAX, 0); SLOTS]),
        }
    }

    /// Adds `n` events at the current second.
    pub fn record(&self, n: u64) {
        self.record_at(self.origin.elapsed(), n);
    }

    pub fn record_at(&self, since_origin: Duration, n: u64) {
        let sec = since_origin.as_secs();
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        let slot = &mut slots[(sec % SLOTS as u64) as usize];
        if slot.0 == sec {
            slot.1 += n;
        } else {
            *slot = (sec, n);
        }
    }

    /// Events per second over the last minute (the current second included). While the
    /// window is younger than a minute the rate is over the time it has existed, so a fresh
    /// start does not understate it.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(self.origin.elapsed())
    }

    pub fn per_second_at(&self, since_origin: Duration) -> f64 {
        let now = since_origin.as_secs();
        let oldest = now.saturating_sub(SLOTS as u64 - 1);
        let Ok(slots) = self.slots.lock() else {
            return 0.0;
        };
        let total: u64 = slots
            .iter()
            .filter(|(sec, _)| *sec != u64::MAX && *sec >= oldest && *sec <= now)
            .map(|(_, n)| n)
            .sum();
        let span = since_origin.as_secs_f64().clamp(1.0, SLOTS as f64);
        (total as f64 / span * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn rate_over_the_last_minute() {
        let w = RateWindow::new(Instant::now());
        assert_eq!(w.per_second_at(at(0.5)), 0.0);
        w.record_at(at(0.2), 10);
        // Younger than a second: counted over one second.
        assert_eq!(w.per_second_at(at(0.5)), 10.0);
        for s in 1..120 {
            w.record_at(at(s as f64 + 0.1), 6);
        }
        // 60 slots of 6 each.
        assert_eq!(w.per_second_at(at(119.5)), 6.0);
        // Half a minute of silence halves the rate; a whole minute empties it.
        assert_eq!(w.per_second_at(at(149.5)), 3.0);
        assert_eq!(w.per_second_at(at(179.5)), 0.0);
        // A slot reused after a lap starts from zero.
        w.record_at(at(180.0), 60);
        assert_eq!(w.per_second_at(at(180.5)), 1.0);
    }

    #[test]
    fn early_rate_uses_the_elapsed_time() {
        let w = RateWindow::new(Instant::now());
        w.record_at(at(1.0), 10);
        w.record_at(at(3.0), 10);
        assert_eq!(w.per_second_at(at(4.0)), 5.0);
    }
}
