//! Turns a ticket from the job channel into a job with its body, on the worker's own thread
//! when it starts the message. Reading here, not when the message is queued, is what bounds
//! payload memory by `queue.workers` instead of by the backlog: 600 queued 1 MiB bodies cost
//! 600 small tickets, not 600 MiB (measured in `docs/performance.md`).
//!
//! A ticket from the fast path usually finds its body kept in memory since the commit
//! (`queue::fresh_bodies`, bounded); otherwise the body is read here, from SQLite's page cache
//! or the OS's, a read transaction of tens of microseconds.

use std::sync::Arc;

use super::{Dispatcher, Job, QueuedJob};
use crate::store::ReadStore;

#[derive(Clone)]
pub struct BodyLoader {
    reader: Arc<dyn ReadStore>,
    dispatcher: Dispatcher,
}

impl BodyLoader {
    pub fn new(reader: Arc<dyn ReadStore>, dispatcher: Dispatcher) -> BodyLoader {
        BodyLoader { reader, dispatcher }
    }

    /// The job to run, or `None` when there is nothing to run now:
    /// * the message is gone (an operator or retention removed it while it waited): skipped,
    ///   there is nothing left to process;
    /// * the body cannot be read (a storage error): the message stays `queued` on disk and
    ///   leaves the in-flight set, so the feeder hands it over again on its next look.
    pub fn load(&self, ticket: QueuedJob) -> Option<Job> {
        let kept = self
            .dispatcher
            .take_fresh_body(ticket.id)
            .map(|b| Ok(Some(b)));
        match kept.unwrap_or_else(|| self.reader.payload(ticket.id)) {
            Ok(Some(payload)) => Some(Job {
                id: ticket.id,
                path: ticket.path,
                payload,
                attempts: ticket.attempts,
            }),
            Ok(None) => {
                log::warn!(
                    "message {} is gone before its attempt (removed while queued); skipped",
                    ticket.id
                );
                self.dispatcher.release(ticket.id);
                None
            }
            Err(e) => {
                log::error!(
                    "message {}: cannot read its body ({e}); it stays queued and is tried again",
                    ticket.id
                );
                self.dispatcher.release(ticket.id);
                None
            }
        }
    }
}
