//! A lock-free latency histogram: log-linear buckets (8 per power of two, ~12% resolution) over
//! microseconds. Recording is one atomic add, so the ingest path can afford it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

pub struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

fn index(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The largest value that falls in bucket `i` (a percentile is reported as this bound, so it
/// never understates).
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + SUB_BITS as u64 - 1;
    let sub = i % SUB;
    let low = (1u64 << exp) + (sub << (exp - SUB_BITS as u64));
    // Written so the last bucket's bound (u64::MAX) does not overflow.
    low + ((1u64 << (exp - SUB_BITS as u64)) - 1)
}

impl LatencyHistogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[index(us)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Relaxed)
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }

    /// The `q`-quantile (0..=1) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                return upper_bound(i);
            }
        }
        upper_bound(BUCKETS - 1)
    }

    /// How many recordings were at most `bound_us` (for Prometheus' cumulative buckets; a
    /// bucket straddling the bound counts as above it).
    pub fn count_at_most(&self, bound_us: u64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|(i, _)| upper_bound(*i) <= bound_us)
            .map(|(_, c)| c.load(Relaxed))
            .sum()
    }

    /// One pass over the buckets: for each of `bounds_us` (ascending) how many recordings were
    /// at most it (as [`Self::count_at_most`]), and the count of all of them. The figures are
    /// cumulative and the last one is the total, even while others record.
    pub fn cumulative(&self, bounds_us: &[u64]) -> (Vec<u64>, u64) {
        let mut out = Vec::with_capacity(bounds_us.len());
        let mut bounds = bounds_us.iter().peekable();
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            while let Some(&&b) = bounds.peek() {
                if upper_bound(i) > b {
                    out.push(seen);
                    bounds.next();
                } else {
                    break;
                }
            }
            seen += c.load(Relaxed);
        }
        out.extend(bounds.map(|_| seen));
        (out, seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for us in [
            0u64,
            1,
            7,
            8,
            9,
            15,
            16,
            100,
            999,
            1000,
            123_456,
            10_000_000,
            u64::MAX / 2,
        ] {
            let i = index(us);
            assert!(upper_bound(i) >= us, "{us} above its bucket {i}");
            if i > 0 {
                assert!(upper_bound(i - 1) < us, "{us} belongs lower than {i}");
            }
        }
    }

    #[test]
    fn quantiles_are_within_resolution() {
        let h = LatencyHistogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0), (1.0, 10_000.0)] {
            let got = h.quantile_us(q) as f64;
            assert!(got >= want && got <= want * 1.13, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.count_at_most(u64::MAX), 10_000);
        assert!(h.count_at_most(1000) <= 1000);
        let bounds = [0, 1000, 5000, u64::MAX];
        let (cum, total) = h.cumulative(&bounds);
        assert_eq!(total, 10_000);
        for (b, c) in bounds.iter().zip(&cum) {
            assert_eq!(*c, h.count_at_most(*b), "bound {b}");
        }
    }
}
