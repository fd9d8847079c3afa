//! The seam itself: what the layers above see of storage. The writer thread alone holds a
//! [`WriteStore`]; readers share a [`ReadStore`]. Both backends implement them below the
//! state machine (`sql_store.rs`, `sqlite/`, `postgres/`).

use std::sync::Arc;

use crate::store::error::StoreResult;
use crate::store::model::*;
use crate::store::sql;

/// The write side: one implementation, owned by one thread.
pub trait WriteStore: Send {
    /// Applies every op in one transaction and commits it (one fsync); the results line up
    /// with `ops`. On error nothing of the batch is kept, unless the error came after a
    /// durable `COMMIT` (a connection lost while the answer was on its way): every op is
    /// therefore safe to apply twice (an attempt's ops name their attempt; an append with an
    /// idempotency key finds itself).
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)>;
    /// At start: moves back to `queued` the `processing` messages this node (`owner`) held when
    /// it stopped, those nobody holds, and those whose lease ran out before `now_ms`; returns
    /// how many. Another node's live leases are left to it.
    fn recover_in_flight(&mut self, owner: &str, now_ms: i64) -> StoreResult<u64>;
    /// Housekeeping between batches (WAL checkpoints, heartbeats); `idle_for` is how long no
    /// commit has been asked for (zero right after a commit). Returns how long the writer may
    /// wait for work before the next call is due, `None` when nothing is due until the next
    /// commit: an idle writer then sleeps until an op arrives instead of polling, which is
    /// what a Pi on battery or a shared host notices.
    fn maintain(
        &mut self,
        idle_for: std::time::Duration,
    ) -> StoreResult<Option<std::time::Duration>>;
    /// The last call at a clean stop: SQLite copies its WAL back into the database file and
    /// truncates it; PostgreSQL takes this node off the node list.
    fn close(&mut self) -> StoreResult<()>;
}

/// The read side: cheap queries on their own connections; never blocks the writer.
pub trait ReadStore: Send + Sync {
    fn counters(&self) -> StoreResult<DurableCounters>;
    fn message(&self, id: i64) -> StoreResult<Option<MessageDetail>>;
    fn logs(&self, query: &LogQuery) -> StoreResult<Vec<MessageSummary>>;
    /// Dead letters with id above `after_id`, oldest first; of one source when given.
    fn dead_letters(&self, query: &DeadLetterQuery) -> StoreResult<Vec<DeadLetter>>;
    /// The rejections log, newest first.
    fn rejections(&self, query: &RejectionQuery) -> StoreResult<Vec<Rejection>>;
    /// Every source's durable totals (a few rows; never a scan of the messages), by name.
    fn source_counters(&self) -> StoreResult<Vec<(String, SourceCounters)>>;
    /// Operator actions recorded for one message, oldest first (retries of "every dead
    /// letter" are recorded without a message and are not listed).
    fn actions(&self, message_id: i64) -> StoreResult<Vec<OperatorAction>>;
    /// Due `queued` messages with id above `after_id`, oldest first, for the feeder: tickets
    /// only, never bodies.
    fn due_jobs(&self, after_id: i64, now_ms: i64, limit: u32) -> StoreResult<Vec<QueuedJob>>;
    /// The earliest time after `after_ms` at which a `queued` message becomes due (a retry's
    /// backoff ends), `None` when none waits: the feeder sleeps until then instead of polling.
    fn next_due_at(&self, after_ms: i64) -> StoreResult<Option<i64>>;
    /// When the oldest `queued` message was received (unix ms), `None` when nothing is
    /// queued: the backlog's age. One index step (`messages_state`), never a scan.
    fn oldest_queued_at(&self) -> StoreResult<Option<i64>>;
    /// One message's body, for the worker starting an attempt (or why there is none).
    fn payload(&self, id: i64) -> StoreResult<Payload>;
    fn orders(&self, query: &OrderQuery) -> StoreResult<Vec<StoredOrder>>;
    fn order(&self, order_number: &str) -> StoreResult<Option<StoredOrder>>;
    /// Raw bodies for `reprocess`, id above `after_id`, oldest first.
    fn raw_messages(&self, filter: &RawFilter, page: PageAfter) -> StoreResult<Vec<RawMessage>>;
    /// How many messages `raw_messages` would return in all.
    fn raw_count(&self, filter: &RawFilter) -> StoreResult<u64>;
    /// The storage's own figures (see `StorageHealth`); cheap, never a table scan.
    fn storage_health(&self) -> StorageHealth;
    /// `processing` messages whose lease ran out before `now_ms` (or that have none): work
    /// nobody is doing. Reads the `processing` rows only.
    fn expired_leases(&self, now_ms: i64) -> StoreResult<u64>;
    /// Runs one of the shared read statements (`statements.rs`, `?N` placeholders) and hands
    /// back its rows: what lets a read side be written once above the backends
    /// (`delivery_reads.rs`).
    fn rows(&self, sql: &'static str, params: &[sql::Value]) -> StoreResult<Vec<sql::Row>>;
    /// The nodes sharing this database that are alive (heartbeat); empty for a backend that
    /// serves one node only.
    fn nodes(&self) -> StoreResult<Vec<NodeStatus>> {
        Ok(Vec::new())
    }
    /// The counters split by who wrote them, for a node sharing the database with others;
    /// `None` for a backend that serves one node only.
    fn cluster_counters(&self, node: &str) -> StoreResult<Option<ClusterCounters>> {
        let _ = node;
        Ok(None)
    }
}

/// A boxed store is a store, so the writer and commands can take
/// whatever [`open`](super::open) returned.
impl<S: WriteStore + ?Sized> WriteStore for Box<S> {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        (**self).commit_batch(ops, now_ms)
    }
    fn recover_in_flight(&mut self, owner: &str, now_ms: i64) -> StoreResult<u64> {
        (**self).recover_in_flight(owner, now_ms)
    }
    fn maintain(
        &mut self,
        idle_for: std::time::Duration,
    ) -> StoreResult<Option<std::time::Duration>> {
        (**self).maintain(idle_for)
    }
    fn close(&mut self) -> StoreResult<()> {
        (**self).close()
    }
}

/// A shared read side is a read side (see [`open`](super::open)).
impl<S: ReadStore + ?Sized> ReadStore for Arc<S> {
    fn counters(&self) -> StoreResult<DurableCounters> {
        (**self).counters()
    }
    fn message(&self, id: i64) -> StoreResult<Option<MessageDetail>> {
        (**self).message(id)
    }
    fn logs(&self, query: &LogQuery) -> StoreResult<Vec<MessageSummary>> {
        (**self).logs(query)
    }
    fn dead_letters(&self, query: &DeadLetterQuery) -> StoreResult<Vec<DeadLetter>> {
        (**self).dead_letters(query)
    }
    fn rejections(&self, query: &RejectionQuery) -> StoreResult<Vec<Rejection>> {
        (**self).rejections(query)
    }
    fn source_counters(&self) -> StoreResult<Vec<(String, SourceCounters)>> {
        (**self).source_counters()
    }
    fn actions(&self, message_id: i64) -> StoreResult<Vec<OperatorAction>> {
        (**self).actions(message_id)
    }
    fn due_jobs(&self, after_id: i64, now_ms: i64, limit: u32) -> StoreResult<Vec<QueuedJob>> {
        (**self).due_jobs(after_id, now_ms, limit)
    }
    fn next_due_at(&self, after_ms: i64) -> StoreResult<Option<i64>> {
        (**self).next_due_at(after_ms)
    }
    fn oldest_queued_at(&self) -> StoreResult<Option<i64>> {
        (**self).oldest_queued_at()
    }
    fn payload(&self, id: i64) -> StoreResult<Payload> {
        (**self).payload(id)
    }
    fn orders(&self, query: &OrderQuery) -> StoreResult<Vec<StoredOrder>> {
        (**self).orders(query)
    }
    fn order(&self, order_number: &str) -> StoreResult<Option<StoredOrder>> {
        (**self).order(order_number)
    }
    fn raw_messages(&self, filter: &RawFilter, page: PageAfter) -> StoreResult<Vec<RawMessage>> {
        (**self).raw_messages(filter, page)
    }
    fn raw_count(&self, filter: &RawFilter) -> StoreResult<u64> {
        (**self).raw_count(filter)
    }
    fn storage_health(&self) -> StorageHealth {
        (**self).storage_health()
    }
    fn expired_leases(&self, now_ms: i64) -> StoreResult<u64> {
        (**self).expired_leases(now_ms)
    }
    fn rows(&self, sql: &'static str, params: &[sql::Value]) -> StoreResult<Vec<sql::Row>> {
        (**self).rows(sql, params)
    }
    fn nodes(&self) -> StoreResult<Vec<NodeStatus>> {
        (**self).nodes()
    }
    fn cluster_counters(&self, node: &str) -> StoreResult<Option<ClusterCounters>> {
        (**self).cluster_counters(node)
    }
}
