//! Open-loop schedule math.
//!
//! An open-loop run sends request `i` at the *intended* time `start + i * interval`, where
//! `interval = duration / total`. Latency is always measured from that intended time, never from
//! the moment a sender thread actually got round to sending. When the server (or the load
//! generator itself) stalls, the requests queued behind the stall are charged for the time they
//! spent waiting, so the histogram does not suffer from coordinated omission.

use std::time::{Duration, Instant};

/// A fixed send schedule: `total` requests spread evenly over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    total: u64,
    duration: Duration,
}

impl Schedule {
    /// `total` requests evenly spaced over `duration` (the first one at offset 0).
    pub fn new(total: u64, duration: Duration) -> Schedule {
        Schedule { total, duration }
    }

    /// The schedule for `rate` requests per second over `duration`: `round(rate * duration)`
    /// requests, at least one.
    pub fn from_rate(rate: f64, duration: Duration) -> Schedule {
        Schedule::new(total_for_rate(rate, duration), duration)
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Requests per second this schedule asks for.
    pub fn rate(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs <= 0.0 {
            f64::INFINITY
        } else {
            self.total as f64 / secs
        }
    }

    /// Offset of request `i` from the start of the run.
    pub fn offset(&self, i: u64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        // i * duration / total in integer nanoseconds: exact, no drift over long runs.
        let nanos = self.duration.as_nanos() * u128::from(i) / u128::from(self.total);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The instant request `i` is meant to go out, for a run that started at `start`.
    pub fn intended(&self, start: Instant, i: u64) -> Instant {
        start + self.offset(i)
    }
}

/// `round(rate * duration)`, at least 1.
pub fn total_for_rate(rate: f64, duration: Duration) -> u64 {
    let n = (rate * duration.as_secs_f64()).round();
    if n.is_finite() && n >= 1.0 {
        n as u64
    } else {
        1
    }
}

/// Latency charged to a request: from when it was *meant* to go out (open loop) or actually went
/// out (closed loop) until its answer was read.
pub fn latency(intended: Instant, completed: Instant) -> Duration {
    completed.saturating_duration_since(intended)
}

/// How far behind schedule a sender was when it actually started sending.
pub fn lag(intended: Instant, actual_send: Instant) -> Duration {
    actual_send.saturating_duration_since(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_evenly_spaced() {
        let s = Schedule::new(4, Duration::from_secs(2));
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(500));
        assert_eq!(s.offset(2), Duration::from_millis(1000));
        assert_eq!(s.offset(3), Duration::from_millis(1500));
        assert!((s.rate() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn named_scenarios_have_the_right_spacing() {
        // black-friday: 500 over 5 minutes -> one every 600 ms
        let bf = Schedule::new(500, Duration::from_secs(300));
        assert_eq!(bf.offset(1), Duration::from_millis(600));
        assert_eq!(bf.offset(499), Duration::from_millis(299_400));
        // extreme-burst: 1000 over 30 s -> one every 30 ms
        let eb = Schedule::new(1000, Duration::from_secs(30));
        assert_eq!(eb.offset(10), Duration::from_millis(300));
    }

    #[test]
    fn no_drift_over_long_runs() {
        // 3 per second does not divide a second evenly; integer math must not accumulate error
        let s = Schedule::from_rate(3.0, Duration::from_secs(3600));
        assert_eq!(s.total(), 10_800);
        assert_eq!(s.offset(10_799), Duration::from_nanos(3_599_666_666_666));
        assert_eq!(s.offset(3 * 1000), Duration::from_secs(1000));
    }

    #[test]
    fn from_rate_rounds_and_never_yields_zero() {
        assert_eq!(
            Schedule::from_rate(200.0, Duration::from_secs(1)).total(),
            200
        );
        assert_eq!(Schedule::from_rate(2.5, Duration::from_secs(1)).total(), 3);
        assert_eq!(Schedule::from_rate(0.01, Duration::from_secs(1)).total(), 1);
    }

    #[test]
    fn intended_time_is_relative_to_start() {
        let start = Instant::now();
        let s = Schedule::new(10, Duration::from_secs(1));
        assert_eq!(s.intended(start, 5) - start, Duration::from_millis(500));
    }

    #[test]
    fn a_stalled_send_is_charged_from_its_intended_time() {
        // Request meant for t=100ms; the sender was stuck until t=400ms and the answer came at
        // t=410ms. The latency is 310 ms, not the 10 ms the wire saw.
        let start = Instant::now();
        let s = Schedule::new(10, Duration::from_secs(1));
        let intended = s.intended(start, 1);
        let actual = start + Duration::from_millis(400);
        let done = start + Duration::from_millis(410);
        assert_eq!(latency(intended, done), Duration::from_millis(310));
        assert_eq!(lag(intended, actual), Duration::from_millis(300));
        // a sender that is early (slept until its slot) has no lag
        assert_eq!(lag(intended, start), Duration::ZERO);
    }
}
