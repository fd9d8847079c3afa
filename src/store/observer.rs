//! What the writer reports, so that everything that follows a commit (handing new messages to
//! the workers, publishing events, moving live figures) lives above the store instead of
//! inside it. The writer calls these on its own thread, in commit order, and only after the
//! transaction is durable; a handler waiting on an op is answered right after
//! [`CommitObserver::committed`] for that op, never before.

use crate::store::error::StoreError;

use crate::store::model::{CounterDelta, OpOutcome, WriteOp};

/// Told by the writer about each commit. Implementations must not block: every call holds
/// up the next commit (and so every waiting handler).
pub trait CommitObserver: Send {
    /// The writer thread is about to start (called before [`Writer::start`](super::Writer)
    /// returns) or has ended (after its final checkpoint).
    fn writer_running(&mut self, running: bool);
    /// The queue-size high-water mark to store with the next commit.
    fn queue_size_peak(&self) -> u64;
    /// A batch of `ops` ops committed and moved the counters by `delta`. Called once per
    /// batch, before the per-op [`committed`](CommitObserver::committed) calls.
    fn batch_committed(&mut self, ops: usize, delta: &CounterDelta);
    /// One op of a committed batch and its outcome, in commit order. The op is handed over
    /// (its payload moves on to a worker without a copy).
    fn committed(&mut self, op: WriteOp, outcome: &OpOutcome);
    /// A commit failed and nothing of it was kept (readiness reports it until the next
    /// successful commit).
    fn commit_failed(&mut self, error: &StoreError);
    /// An op nobody waits for (a worker's outcome) could not be recorded and is given up:
    /// its message stays as it was on disk.
    fn dropped(&mut self, op: &WriteOp, error: &StoreError);
}
