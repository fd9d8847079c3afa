//! What the gate tells the listener watchdog, so the watchdog need not ask while clients are
//! being answered anyway: new client connections that got their first answer, and trouble
//! (a client not accepted, tiny_http not reached) that calls for a check at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub struct Activity {
    answered: AtomicU64,
    /// When the last of those answers came, in milliseconds since `epoch`, plus one (0: never).
    answered_ms: AtomicU64,
    epoch: Instant,
    trouble: (Sender<()>, Receiver<()>),
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            answered: AtomicU64::new(0),
            answered_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            trouble: crossbeam_channel::bounded(1),
        })
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// How long ago the last new connection got its first answer (`Duration::MAX`: none yet).
    pub fn since_answered(&self) -> Duration {
        match self.answered_ms.load(Ordering::Relaxed) {
            0 => Duration::MAX,
            at => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(at - 1)),
        }
    }

    /// Where trouble is reported.
    pub fn trouble(&self) -> Receiver<()> {
        self.trouble.1.clone()
    }

    pub fn report_trouble(&self) {
        let _ = self.trouble.0.try_send(());
    }

    /// A new connection's first answer went out: the whole path works.
    pub fn record_answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.answered_ms.store(ms, Ordering::Relaxed);
    }
}
