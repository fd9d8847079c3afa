//! Retry delays: `min(backoff_max, base · 2^(attempt-1))` with ±10% jitter so that a burst of
//! failures does not come back as a synchronized burst of retries.

use std::time::Duration;

use crate::base::jitter::next_random;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The delay after the `attempt`-th attempt (1-based) failed, before jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let ms = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms);
        Duration::from_millis(ms)
    }

    /// The nominal delay moved by up to ±10%, never above `max_ms`.
    pub fn with_jitter(&self, attempt: u32) -> Duration {
        let nominal = self.nominal(attempt).as_millis() as u64;
        let spread = nominal / 10;
        if spread == 0 {
            return Duration::from_millis(nominal);
        }
        let offset = next_random() % (2 * spread + 1);
        Duration::from_millis((nominal - spread + offset).min(self.max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 60_000,
        };
        let ms: Vec<u64> = (1..=8).map(|a| b.nominal(a).as_millis() as u64).collect();
        assert_eq!(ms, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
        assert_eq!(b.nominal(1000).as_millis(), 60_000);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 60_000,
        };
        let samples: Vec<u64> = (0..200)
            .map(|_| b.with_jitter(2).as_millis() as u64)
            .collect();
        assert!(
            samples.iter().all(|&ms| (1800..=2200).contains(&ms)),
            "{samples:?}"
        );
        assert!(
            samples.iter().any(|&ms| ms != samples[0]),
            "jitter never varied"
        );
        let capped = Backoff {
            base_ms: 1000,
            max_ms: 1000,
        };
        assert!((0..50).all(|_| capped.with_jitter(5).as_millis() <= 1000));
    }
}
