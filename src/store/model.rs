//! The storage vocabulary shared by the writer, the workers and the HTTP layer. Plain data:
//! no SQL and no threads here.

use serde::Serialize;

use super::order::Order;

/// Where a message is in its life; see `docs/architecture.md` for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Queued,
    Processing,
    Processed,
    Dead,
    Discarded,
}

impl MessageState {
    pub const ALL: [MessageState; 5] = [
        MessageState::Queued,
        MessageState::Processing,
        MessageState::Processed,
        MessageState::Dead,
        MessageState::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Processing => "processing",
            MessageState::Processed => "processed",
            MessageState::Dead => "dead",
            MessageState::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<MessageState> {
        MessageState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One message handed to a worker: everything it needs, so the hot path reads nothing back
/// from the database. It is built from what the store returns (a new message's commit, or
/// [`ReadStore::due_jobs`](super::ReadStore::due_jobs)), hence its home here.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub path: String,
    pub payload: Vec<u8>,
    /// Attempts already made (persisted); the worker's claim adds one.
    pub attempts: u32,
}

/// A webhook as received, before it has an id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub received_at_ms: i64,
    pub path: String,
    pub remote_addr: Option<String>,
    /// Selected request headers (secrets removed), as a JSON object text.
    pub headers_json: String,
    pub payload: Vec<u8>,
    pub idem_key: Option<String>,
}

/// What a successful processing run leaves behind, written in the same transaction as the
/// message's `processed` state so a re-run never duplicates it.
#[derive(Debug, Clone)]
pub enum Effect {
    Nothing,
    Order(Box<Order>),
}

/// One write, applied by the writer thread inside a group-commit transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Append(NewMessage),
    /// A worker starts an attempt: `queued → processing`, attempts + 1.
    Claim {
        id: i64,
    },
    Complete {
        id: i64,
        effect: Effect,
        processing_ms: u64,
    },
    /// The attempt failed and will be tried again: `processing → queued`.
    Retry {
        id: i64,
        error: String,
        next_attempt_at_ms: i64,
    },
    Dead {
        id: i64,
        error: String,
    },
    /// `dead → queued` with a fresh attempt budget; `id: None` means every dead letter.
    RequeueDead {
        id: Option<i64>,
        actor: String,
    },
    /// `dead → discarded` (kept in the audit log).
    Discard {
        id: i64,
        actor: String,
    },
    /// Retention: deletes up to `limit` processed messages finished before the cut-off.
    PurgeProcessed {
        finished_before_ms: i64,
        limit: u32,
    },
    /// `reprocess`: insert or update the order derived from a stored message; a dead message
    /// that now parses becomes processed.
    Rederive {
        id: i64,
        order: Order,
    },
    /// Leases (backends shared by several nodes): this node still runs attempts on `ids`, so
    /// their leases are extended by the configured lease time.
    RenewLeases {
        ids: Vec<i64>,
    },
    /// Leases: `processing` messages whose lease ran out (their node died or lost its outcome)
    /// go back to `queued` for any node to take.
    RequeueExpired,
}

/// What an order write did.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderChange {
    Created(Box<StoredOrder>),
    /// The same order number from the same path is already stored (by `message_id`).
    Duplicate {
        message_id: i64,
    },
    Changed,
    Unchanged,
}

/// The result of one [`WriteOp`], in the same position as the op.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    Appended {
        id: i64,
        duplicate: bool,
    },
    /// An attempt started (`queued → processing`, attempts + 1).
    Claimed,
    Completed {
        order: Option<OrderChange>,
    },
    /// How many messages changed state (retry, requeue, discard, purge).
    Changed(u64),
    /// The op referred to a message not in the state it needs (e.g. retrying one that is not
    /// dead).
    NotApplicable {
        state: Option<MessageState>,
    },
    Rederived(OrderChange),
}

/// Totals kept in the same transactions as the state changes they count, so they survive
/// restarts and reading them never scans a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DurableCounters {
    pub received: u64,
    pub duplicates: u64,
    pub processed: u64,
    /// Messages that went to dead letters (ever).
    pub dead: u64,
    /// Failed attempts that were retried.
    pub retried: u64,
    pub requeued: u64,
    pub discarded: u64,
    pub purged: u64,
    pub orders_created: u64,
    pub processing_ms_total: u64,
    pub queue_size_peak: u64,
    /// Gauges: messages in each live state now.
    pub queued: u64,
    pub processing: u64,
    pub dead_now: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageSummary {
    pub id: i64,
    pub received_at: String,
    pub path: String,
    pub remote_addr: Option<String>,
    pub size: u64,
    pub status: MessageState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub processed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageDetail {
    pub summary: MessageSummary,
    pub headers_json: String,
    pub payload: Vec<u8>,
    pub next_attempt_at: Option<String>,
}

/// One operator action on a message (retry or discard), from `operator_actions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorAction {
    pub at: String,
    pub action: String,
    pub actor: String,
    pub affected: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub received_at: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub failed_at: Option<String>,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    pub status: Option<MessageState>,
}

#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    /// Substring match on order number, email or product.
    pub q: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOrder {
    pub id: i64,
    pub message_id: i64,
    pub source_path: String,
    pub created_at: String,
    pub updated_at: Option<String>,
    #[serde(flatten)]
    pub order: Order,
}

/// Which stored messages `reprocess` reads: those in `status`, or when it is `None` those that
/// are finished (`processed` and `dead`; queued ones are the workers' business and discarded
/// ones the operator's decision).
#[derive(Debug, Clone, Default)]
pub struct RawFilter {
    pub since_ms: Option<i64>,
    pub status: Option<MessageState>,
}

#[derive(Debug, Clone)]
pub struct RawMessage {
    pub id: i64,
    pub path: String,
    pub state: MessageState,
    pub payload: Vec<u8>,
}

/// A change committed by another node sharing the database, for this node's event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteEvent {
    Received { id: i64 },
    OrderCreated(Box<StoredOrder>),
    Dead { id: i64, error: String },
}

/// The counters of a database several nodes share, read in one snapshot: every node's rows
/// summed, and the other nodes' rows alone (signed: a node's own rows go below zero when it
/// finishes what another node received). A node keeps its own share exactly from its commits
/// and adds the others' growth from these.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterCounters {
    pub all: DurableCounters,
    pub others: CounterDelta,
}

/// A node sharing the database, from its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub started_at: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FileSizes {
    pub db_size_bytes: u64,
    pub wal_size_bytes: u64,
}

/// How one committed batch moved the counters; the writer adds it to the live figures after
/// the commit, the store adds the totals to the durable `counters` table inside it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CounterDelta {
    pub received: i64,
    pub duplicates: i64,
    pub processed: i64,
    pub dead: i64,
    pub retried: i64,
    pub requeued: i64,
    pub discarded: i64,
    pub purged: i64,
    pub orders_created: i64,
    pub processing_ms: i64,
    pub queued: i64,
    pub processing: i64,
    pub dead_now: i64,
}

impl CounterDelta {
    /// The durable totals by their stored names.
    pub fn totals(&self) -> [(&'static str, i64); 10] {
        [
            ("received", self.received),
            ("duplicates", self.duplicates),
            ("processed", self.processed),
            ("dead", self.dead),
            ("retried", self.retried),
            ("requeued", self.requeued),
            ("discarded", self.discarded),
            ("purged", self.purged),
            ("orders_created", self.orders_created),
            ("processing_ms_total", self.processing_ms),
        ]
    }
}
