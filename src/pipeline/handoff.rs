//! Between the commit and the workers: a newly stored message is offered to them at once
//! (the fast path; what does not fit stays `queued` for the feeder), a finished one leaves the
//! in-flight set, requeued dead letters may be handed over again.

use crate::queue::{Dispatcher, Job};
use crate::store::{OpOutcome, WriteOp};

pub struct JobHandoff {
    dispatcher: Dispatcher,
}

impl JobHandoff {
    pub fn new(dispatcher: Dispatcher) -> JobHandoff {
        JobHandoff { dispatcher }
    }

    pub fn committed(&self, op: WriteOp, outcome: &OpOutcome) {
        match (op, outcome) {
            (
                WriteOp::Append(m),
                OpOutcome::Appended {
                    id,
                    duplicate: false,
                },
            ) => self.dispatcher.offer(Job {
                id: *id,
                path: m.path,
                payload: m.payload,
                attempts: 0,
            }),
            (WriteOp::Complete { id, .. }, OpOutcome::Completed { .. })
            | (WriteOp::Dead { id, .. }, OpOutcome::Changed(_)) => self.dispatcher.finish(id),
            (
                WriteOp::Complete { id, .. } | WriteOp::Dead { id, .. },
                OpOutcome::NotApplicable { state },
            ) => {
                log::warn!("message {id} finished but was {state:?} on disk; outcome ignored");
                self.dispatcher.finish(id);
            }
            // Leases that ran out (another node died): their messages are queued again.
            (WriteOp::RequeueExpired, OpOutcome::Changed(n)) if *n > 0 => {
                self.dispatcher.wake_feeder();
            }
            (WriteOp::RequeueDead { id, .. }, OpOutcome::Changed(n)) if *n > 0 => {
                self.dispatcher.forget(id);
                self.dispatcher.wake_feeder();
            }
            _ => {}
        }
    }

    /// A worker's outcome (or claim) could not be recorded and was given up: its message leaves
    /// the in-flight set so the feeder may hand it over again.
    pub fn dropped(&self, op: &WriteOp) {
        if let WriteOp::Complete { id, .. } | WriteOp::Dead { id, .. } | WriteOp::Claim { id } = op
        {
            self.dispatcher.release(*id);
        }
    }
}
