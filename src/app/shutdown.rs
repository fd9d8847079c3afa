//! How the service stops. One channel whose sender is dropped to broadcast "stop" to every
//! thread at once (a disconnected channel wakes every `recv`), plus the deadline after which
//! workers take nothing new.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::work::queue::StopSignal;

pub struct Shutdown {
    trigger: Option<Sender<()>>,
    receiver: Receiver<()>,
    deadline: Arc<OnceLock<Instant>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = bounded(0);
        Shutdown {
            trigger: Some(tx),
            receiver: rx,
            deadline: Arc::new(OnceLock::new()),
        }
    }

    /// A receiver that becomes ready (disconnected) when [`Shutdown::begin`] is called.
    pub fn receiver(&self) -> Receiver<()> {
        self.receiver.clone()
    }

    pub fn signal(&self) -> StopSignal {
        StopSignal {
            stop: self.receiver.clone(),
            deadline: self.deadline.clone(),
        }
    }

    /// Starts the stop: workers get `drain_for` to empty the channel.
    pub fn begin(&mut self, drain_for: Duration) -> Instant {
        let deadline = *self.deadline.get_or_init(|| Instant::now() + drain_for);
        self.trigger.take();
        deadline
    }
}
