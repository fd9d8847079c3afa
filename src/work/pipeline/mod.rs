//! What a commit sets in motion. The store's writer commits and reports; this module owns the
//! wiring from that report to everything above the store, one concern per file:
//!
//! * [`handoff`] — new messages go to the workers, finished ones leave the in-flight set;
//! * [`events`] — the live event stream hears about receipts, orders, dead letters and
//!   deliveries;
//! * [`figures`] — the live counters, batch figures and storage health move;
//! * [`relay`] — new deliveries wake the relay's scheduler.
//!
//! `app/service.rs` installs one [`Pipeline`] as the writer's observer. Everything here runs on
//! the writer thread, after the commit is durable and before the waiting handler is answered,
//! so none of it may block.

pub mod events;
pub mod figures;
pub mod handoff;
pub mod relay;

use std::sync::Arc;

use crate::store::{CommitObserver, CounterDelta, OpOutcome, StoreError, WriteOp};
use crate::work::events::EventSink;
use crate::work::queue::Dispatcher;
use crate::work::relay::RelayWake;
use crate::work::stats::LiveStats;

pub use events::EventPublisher;
pub use figures::LiveFigures;
pub use handoff::JobHandoff;
pub use relay::RelayHandoff;

/// The writer's observer: the three concerns, called in a fixed order.
pub struct Pipeline {
    figures: LiveFigures,
    events: EventPublisher,
    handoff: JobHandoff,
    relay: RelayHandoff,
}

impl Pipeline {
    pub fn new(
        live: Arc<LiveStats>,
        dispatcher: Dispatcher,
        events: EventSink,
        relay: RelayWake,
    ) -> Pipeline {
        Pipeline {
            relay: RelayHandoff::new(relay),
            figures: LiveFigures::new(live),
            events: EventPublisher::new(events),
            handoff: JobHandoff::new(dispatcher),
        }
    }
}

impl CommitObserver for Pipeline {
    fn writer_running(&mut self, running: bool) {
        self.figures.writer_running(running);
    }

    fn queue_size_peak(&self) -> u64 {
        self.figures.queue_size_peak()
    }

    fn batch_committed(&mut self, ops: usize, delta: &CounterDelta) {
        self.figures.batch_committed(ops, delta);
        self.events.deliveries_died(&delta.deliveries_died);
    }

    fn committed(&mut self, op: WriteOp, outcome: &OpOutcome) {
        // The event first: a new message is announced before a worker can finish it.
        self.events.committed(&op, outcome);
        self.relay.committed(&op, outcome);
        self.handoff.committed(op, outcome);
    }

    fn commit_failed(&mut self, _error: &StoreError) {
        self.figures.commit_failed();
        self.handoff.commit_failed();
    }

    fn dropped(&mut self, op: &WriteOp, _error: &StoreError) {
        self.handoff.dropped(op);
    }
}
