//! The drain clock of a stop: when it begins, the workers get `queue.shutdown_timeout_s` to
//! empty their channel, and take nothing new after it. The stop itself (telling threads and
//! waiting for them) is [`crate::base::lifecycle`]'s.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// When the drain ends; unset until a stop begins. Cheap to clone (the workers each hold one).
#[derive(Clone, Debug, Default)]
pub struct DrainDeadline(Arc<OnceLock<Instant>>);

impl DrainDeadline {
    /// Starts the drain: it ends `drain_for` from now (from the first call; later calls return
    /// the same deadline).
    pub fn begin(&self, drain_for: Duration) -> Instant {
        *self.0.get_or_init(|| Instant::now() + drain_for)
    }

    /// Whether a drain has begun and its deadline has passed.
    pub fn passed(&self) -> bool {
        self.0.get().is_some_and(|d| Instant::now() >= *d)
    }
}
