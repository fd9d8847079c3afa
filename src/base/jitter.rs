//! Random spread for waits that many parties start at once (a worker's retry backoff, a
//! refused sender's `Retry-After`), so that what failed together does not come back together.
//! A per-thread xorshift64*: spread, not cryptographic quality.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// Different per thread and per process: the clock's nanoseconds mixed with the thread's id.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let tid = format!("{:?}", std::thread::current().id());
    tid.bytes()
        .fold(t | 1, |acc, b| acc.rotate_left(5) ^ u64::from(b))
}

/// The next pseudo-random number of this thread.
pub fn next_random() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A number in `low..=high` (`low` when `high <= low`).
pub fn between(low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    low + next_random() % (high - low + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_in_range_and_reaches_both_ends() {
        let samples: Vec<u64> = (0..500).map(|_| between(2, 4)).collect();
        assert!(samples.iter().all(|n| (2..=4).contains(n)), "{samples:?}");
        for n in 2..=4 {
            assert!(samples.contains(&n), "{n} never drawn");
        }
        assert_eq!(between(5, 5), 5);
        assert_eq!(between(7, 3), 7);
    }
}
