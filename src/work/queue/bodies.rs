//! Turns a ticket from the job channel into a job with its body, on the worker's own thread
//! when it starts the message. Reading here, not when the message is queued, is what bounds
//! payload memory by `queue.workers` instead of by the backlog: a queued body costs a small
//! ticket, not its bytes (`docs/performance.md` has the measurement).
//!
//! A ticket from the fast path usually finds its body kept in memory since the commit
//! (`queue::fresh_bodies`, bounded); otherwise the body is read here, from SQLite's page cache
//! or the OS's, a read transaction of tens of microseconds.

use std::sync::Arc;

use super::{Dispatcher, Job, QueuedJob};
use crate::store::{Payload, ReadStore};

#[derive(Clone)]
pub struct BodyLoader {
    reader: Arc<dyn ReadStore>,
    dispatcher: Dispatcher,
}

impl BodyLoader {
    pub fn new(reader: Arc<dyn ReadStore>, dispatcher: Dispatcher) -> BodyLoader {
        BodyLoader { reader, dispatcher }
    }

    /// The job to run, a message that can never run (its body is missing), or nothing to do
    /// now:
    /// * the message is gone (an operator or retention removed it while it waited): skipped,
    ///   there is nothing left to process;
    /// * the body cannot be read (a storage error): the message stays `queued` on disk and
    ///   leaves the in-flight set, so the feeder hands it over again on its next look.
    pub fn load(&self, ticket: QueuedJob) -> Loaded {
        let kept = self
            .dispatcher
            .take_fresh_body(ticket.id)
            .map(|b| Ok(Payload::Found(b)));
        match kept.unwrap_or_else(|| self.reader.payload(ticket.id)) {
            Ok(Payload::Found(payload)) => Loaded::Job(Job {
                id: ticket.id,
                path: ticket.path,
                payload,
                attempts: ticket.attempts,
            }),
            Ok(Payload::BodyMissing) => Loaded::BodyMissing(ticket),
            Ok(Payload::MessageGone) => {
                log::warn!(
                    "message {} is gone before its attempt (removed while queued); skipped",
                    ticket.id
                );
                self.dispatcher.release(ticket.id);
                Loaded::Nothing
            }
            Err(e) => {
                log::error!(
                    "message {}: cannot read its body ({e}); it stays queued and is tried again",
                    ticket.id
                );
                self.dispatcher.release(ticket.id);
                Loaded::Nothing
            }
        }
    }
}

/// What [`BodyLoader::load`] found for a ticket.
pub enum Loaded {
    Job(Job),
    /// The message is stored without its body: no attempt can succeed, so it goes to the dead
    /// letters at once (handing it out again would only repeat the failure).
    BodyMissing(QueuedJob),
    /// Nothing to run now (see [`BodyLoader::load`]).
    Nothing,
}
