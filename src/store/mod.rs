//! Storage behind a narrow seam. The writer thread is the only caller of [`WriteStore`]; HTTP
//! handlers, the feeder and the stats page use [`ReadStore`]. Nothing outside this module
//! speaks SQL, so a second backend (PostgreSQL with leases, for several nodes) replaces
//! `sqlite/` and nothing else.

pub mod model;
pub mod retention;
pub mod sqlite;
pub mod writer;

pub use model::*;
pub use retention::RetentionSweeper;
pub use writer::{Writer, WriterHandle};

/// Why a storage operation failed: the database could not be read or written (disk full, I/O
/// error, a stalled commit). Ops that find a message in the wrong state are not errors: they
/// answer `OpOutcome::NotApplicable`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The write side: one implementation, owned by one thread.
pub trait WriteStore: Send {
    /// Applies every op in one transaction and commits it (one fsync); the results line up
    /// with `ops`. On error nothing of the batch is kept.
    /// `queue_size_peak` is the writer's running maximum, stored as a durable high-water mark.
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)>;
    /// Moves messages a crash left `processing` back to `queued`; returns how many.
    fn recover_in_flight(&mut self) -> StoreResult<u64>;
    /// Housekeeping between batches (WAL checkpoints); `idle_for` is how long no commit has
    /// been asked for (zero right after a commit).
    fn maintain(&mut self, idle_for: std::time::Duration) -> StoreResult<()>;
    /// Copies the WAL into the main file and truncates it (on shutdown and when it grows).
    fn checkpoint(&mut self) -> StoreResult<()>;
}

/// The read side: cheap queries on their own connections; never blocks the writer.
pub trait ReadStore: Send + Sync {
    fn counters(&self) -> StoreResult<DurableCounters>;
    fn message(&self, id: i64) -> StoreResult<Option<MessageDetail>>;
    fn logs(&self, query: &LogQuery) -> StoreResult<Vec<MessageSummary>>;
    fn dead_letters(&self, after_id: Option<i64>, limit: u32) -> StoreResult<Vec<DeadLetter>>;
    /// Operator actions recorded for one message, oldest first (retries of "every dead
    /// letter" are recorded without a message and are not listed).
    fn actions(&self, message_id: i64) -> StoreResult<Vec<OperatorAction>>;
    /// Due `queued` messages with id above `after_id`, oldest first, for the feeder.
    fn due_jobs(
        &self,
        after_id: i64,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::queue::Job>>;
    fn orders(&self, query: &OrderQuery) -> StoreResult<Vec<StoredOrder>>;
    fn order(&self, order_number: &str) -> StoreResult<Option<StoredOrder>>;
    /// Raw bodies for `reprocess`, id above `after_id`, oldest first.
    fn raw_messages(
        &self,
        filter: &RawFilter,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<RawMessage>>;
    /// How many messages `raw_messages` would return in all.
    fn raw_count(&self, filter: &RawFilter) -> StoreResult<u64>;
    fn file_sizes(&self) -> FileSizes;
}
