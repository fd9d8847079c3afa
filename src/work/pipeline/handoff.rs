//! Between the commit and the workers: a newly stored message is offered to them at once
//! (the fast path; what does not fit stays `queued` for the feeder), a finished one leaves the
//! in-flight set, requeued dead letters may be handed over again. The offered job is a ticket
//! without the body; the appended payload goes beside it into the dispatcher's bounded
//! `queue::fresh_bodies`, where the worker that starts it finds it (a larger one, or one that
//! did not fit, it reads back from the store: see `queue::bodies`).

use crate::store::{MessageState, OpOutcome, WriteOp};
use crate::work::queue::{Dispatcher, QueuedJob};

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
            ) => self.dispatcher.offer_with_body(
                QueuedJob {
                    id: *id,
                    path: m.path,
                    attempts: 0,
                    size: m.payload.len() as u64,
                },
                Some(m.payload),
            ),
            (WriteOp::Complete { id, .. }, OpOutcome::Completed { .. })
            | (WriteOp::Dead { id, .. }, OpOutcome::Changed(_)) => self.dispatcher.finish(id),
            (
                WriteOp::Complete { id, .. } | WriteOp::Dead { id, .. },
                OpOutcome::NotApplicable { state },
            ) => {
                log::warn!("message {id} finished but was {state:?} on disk; outcome ignored");
                // Still waiting on disk: it may be handed over again (never remembered as
                // finished, which would keep it from the feeder); otherwise it is done here.
                match state {
                    Some(MessageState::Queued | MessageState::Processing) => {
                        self.dispatcher.release(id)
                    }
                    _ => self.dispatcher.finish(id),
                }
            }
            // Messages whose lease ran out are queued again; none of them is in a worker's
            // hands (the keeper spared those), and one that finished while its row stayed
            // `processing` may go out again.
            (WriteOp::RenewLeases { .. }, OpOutcome::LeasesRenewed { requeued, .. })
                if !requeued.is_empty() =>
            {
                for id in requeued {
                    self.dispatcher.forget(Some(*id));
                }
                self.dispatcher.wake_feeder();
            }
            (WriteOp::RequeueDead { id, .. }, OpOutcome::Changed(n)) if *n > 0 => {
                self.dispatcher.forget(id);
                self.dispatcher.wake_feeder();
            }
            _ => {}
        }
    }

    /// A commit failed. Its answer may only have been lost after a durable `COMMIT` (a
    /// PostgreSQL connection dropping), leaving messages stored that nobody was told about:
    /// the feeder looks at the disk so they do not wait for the next start.
    pub fn commit_failed(&self) {
        self.dispatcher.wake_feeder();
    }

    /// A worker's outcome (or claim) could not be recorded and was given up: its message leaves
    /// the in-flight set so the feeder may hand it over again.
    pub fn dropped(&self, op: &WriteOp) {
        if let WriteOp::Complete { id, .. } | WriteOp::Dead { id, .. } | WriteOp::Claim { id, .. } =
            op
        {
            self.dispatcher.release(*id);
        }
    }
}
