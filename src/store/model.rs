//! The storage vocabulary shared by the writer, the workers and the HTTP layer. Plain data:
//! no SQL and no threads here.

use serde::Serialize;

use super::delivery::{AttemptResult, NewDelivery, Taken};
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

/// What travels through the job channel: a few dozen bytes whatever the body's size, so the
/// channel's memory is bounded by `queue.capacity`, not by what senders post. The worker reads
/// the body itself ([`ReadStore::payload`](super::ReadStore::payload)) when it starts the
/// attempt, turning the ticket into a [`Job`].
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub id: i64,
    pub path: String,
    /// Attempts already made (persisted); the worker's claim adds one.
    pub attempts: u32,
    /// The body's size in bytes (for logs and figures; the body itself stays on disk).
    pub size: u64,
}

/// One message in a worker's hands: the ticket plus its body, read by the worker that runs
/// it. Only one exists per busy worker, so payload memory is bounded by `queue.workers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub path: String,
    pub payload: Vec<u8>,
    /// Attempts already made (persisted); the worker's claim adds one.
    pub attempts: u32,
}

/// A message's body as the worker starting an attempt finds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Found(Vec<u8>),
    /// The message itself is gone (an operator or retention removed it while it waited).
    MessageGone,
    /// The message is there but its body row is not (a damaged or hand-edited database):
    /// nothing can ever process it.
    BodyMissing,
}

impl Payload {
    /// From a message row joined with its body: no row, a row without a body, or both.
    pub fn from_row(row: Option<Option<Vec<u8>>>) -> Payload {
        match row {
            None => Payload::MessageGone,
            Some(None) => Payload::BodyMissing,
            Some(Some(body)) => Payload::Found(body),
        }
    }
}

/// A webhook as received, before it has an id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub received_at_ms: i64,
    /// The source it came in through (`[[sources]]`); its idempotency keys are its own.
    pub source: String,
    pub path: String,
    pub remote_addr: Option<String>,
    /// Selected request headers (secrets removed), as a JSON object text.
    pub headers_json: String,
    pub payload: Vec<u8>,
    pub idem_key: Option<String>,
    /// Deliveries of this message (relays, `forward` targets), created in its commit; a
    /// duplicate (its idempotency key seen before) creates none.
    pub deliveries: Vec<NewDelivery>,
}

/// What a successful processing run leaves behind, written in the same transaction as the
/// message's `processed` state so a re-run never duplicates it.
#[derive(Debug, Clone)]
pub enum Effect {
    Nothing,
    Order(Box<Order>),
}

/// Who holds a `processing` message and for how long: the node's id (`node.id`) and the
/// lease length (`queue.lease_s`). The store stamps `lease_until = commit time + duration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: std::sync::Arc<str>,
    pub duration_ms: i64,
}

/// One write, applied by the writer thread inside a group-commit transaction.
///
/// The ops of one attempt (its claim and its outcome) carry the attempt's number, its
/// *token*: the message's `attempts` once the claim has landed. An op applies only to the
/// attempt it names, so whatever order a failing disk makes them land in, a claim can never
/// land after its own outcome (see `docs/architecture.md`, "The rules").
#[derive(Debug, Clone)]
pub enum WriteOp {
    Append(NewMessage),
    /// A worker starts attempt `attempt`: `queued → processing` with `attempts = attempt`,
    /// leased to `lease.owner`. Applies only while the message is `queued` with
    /// `attempts = attempt - 1`; once the attempt's outcome has landed it no longer does.
    Claim {
        id: i64,
        attempt: u32,
        lease: Lease,
    },
    /// Attempt `attempt` succeeded. Like every outcome it applies to the message `processing`
    /// that attempt, or still `queued` before it (its claim has not landed: the outcome
    /// carries it), or `queued` after it (its lease ran out meanwhile); it clears the lease.
    Complete {
        id: i64,
        attempt: u32,
        /// The message's path, as its ticket had it (an order's source path).
        path: String,
        effect: Effect,
        /// How long the attempt took, in microseconds (sub-millisecond work is common).
        processing_us: u64,
    },
    /// Attempt `attempt` failed and will be tried again: `processing → queued`.
    Retry {
        id: i64,
        attempt: u32,
        error: String,
        next_attempt_at_ms: i64,
    },
    /// Attempt `attempt` failed for good: `processing → dead`.
    Dead {
        id: i64,
        attempt: u32,
        error: String,
    },
    /// The lease keeper's tick: extends the lease of every `processing` message of
    /// `lease.owner` whose id is in `live` (attempts this node's workers hold, or whose
    /// outcome is on its way to the disk), and puts back to `queued` every `processing`
    /// message whose lease has run out and that is not in `live` (attempts kept).
    RenewLeases {
        lease: Lease,
        /// Sorted ascending.
        live: Vec<i64>,
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
    /// Retention: deletes up to `limit` processed messages finished before the cut-off, with
    /// their deliveries (a message with a delivery owed or dead is kept). [`OpOutcome::Purged`].
    PurgeProcessed {
        finished_before_ms: i64,
        limit: u32,
    },
    /// Retention: deletes up to `limit` deliveries without a message (alerts) delivered or
    /// discarded before the cut-off, with their attempts; dead ones stay. [`OpOutcome::Purged`].
    PurgeDeliveries {
        finished_before_ms: i64,
        limit: u32,
    },
    /// `reprocess`: insert or update the order derived from a stored message; a dead message
    /// that now parses becomes processed.
    Rederive {
        id: i64,
        order: Order,
    },
    /// A webhook refused by its source's token or signature check: a row in the rejections
    /// log (the oldest beyond `keep` deleted) and the source's `rejected` total.
    Reject(NewRejection),
    /// The queue's size rose to `peak`: the durable high-water mark follows it (never down).
    /// The writer adds it to a batch when the live peak passed the one last written.
    QueueSizePeak {
        peak: u64,
    },
    /// A delivery on its own (an alert): `pending`, or `dead` at once when its target is.
    Deliver(NewDelivery),
    /// The relay takes target `target` (its lease, to `lease.owner`) and up to `limit` of its
    /// due deliveries, oldest first, each `pending → sending` with its attempt counted. A
    /// target whose lease another node holds, or whose head waits for its backoff, yields no
    /// tickets (see `Taken`).
    TakeDeliveries {
        target: String,
        limit: u32,
        lease: Lease,
    },
    /// Attempt `attempt` of delivery `id` ended: recorded with its result, and the delivery
    /// moves as `next` says. Applies only to the delivery `sending` that attempt.
    DeliveryOutcome {
        id: i64,
        attempt: u32,
        result: AttemptResult,
        next: DeliveryNext,
    },
    /// `dead → pending` with a fresh attempt budget (`id: None`: every dead delivery); the
    /// targets of the deliveries retried are alive again. One `id` that is not dead:
    /// [`OpOutcome::DeliveryNotApplicable`] with its state.
    RetryDeliveries {
        id: Option<i64>,
        actor: String,
    },
    /// A dead or pending delivery is given up: `discarded`. One whose request is in flight
    /// (`sending`) is not: what the target answers decides whether there is anything left to
    /// give up ([`OpOutcome::DeliveryNotApplicable`]).
    DiscardDelivery {
        id: i64,
        actor: String,
    },
    /// At start: this node's `sending` deliveries go back to `pending` and its target leases
    /// are let go (the requests died with the process that made them).
    ReleaseDeliveries {
        owner: String,
    },
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryNext {
    Delivered,
    /// Tried again from this time (unix ms).
    RetryAt(i64),
    /// The target answered `429`: tried again from this time (unix ms), and the attempt is
    /// given back (a rate limit is the target's pacing, not a failure of the delivery), though
    /// the request stays in the delivery's log.
    RateLimited(i64),
    Dead,
    /// The target itself is gone (Discord's unknown webhook, invalid token): this delivery and
    /// every other one owed to the target are dead, and the target takes no more requests
    /// until an operator retries.
    TargetDead {
        reason: String,
    },
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
    /// How many messages changed state (retry, requeue, discard).
    Changed(u64),
    /// What a retention op removed: messages, and deliveries (a message's, or ones of their
    /// own), each with its attempts.
    Purged {
        messages: u64,
        deliveries: u64,
    },
    /// The op referred to a message not in the state it needs (e.g. retrying one that is not
    /// dead).
    NotApplicable {
        state: Option<MessageState>,
    },
    Rederived(OrderChange),
    /// A delivery was created ([`WriteOp::Deliver`]).
    DeliveryQueued {
        id: i64,
    },
    /// A delivery op found its delivery in a state it does not apply to: the stored state
    /// (`sending` while its request is in flight), `None` when there is no such delivery.
    DeliveryNotApplicable {
        state: Option<String>,
    },
    /// What [`WriteOp::TakeDeliveries`] found.
    Taken(Taken),
    /// A [`WriteOp::DeliveryOutcome`] was recorded. The deliveries it made dead (the target's
    /// others too, when the target died) are in the batch's `CounterDelta::deliveries_died`.
    DeliveryRecorded {
        /// The target, masked.
        label: String,
    },
    /// What [`WriteOp::RenewLeases`] did.
    LeasesRenewed {
        extended: u64,
        /// Messages put back to `queued` because their lease had run out.
        requeued: Vec<i64>,
    },
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
    /// `processing` messages put back to `queued` because their lease ran out.
    pub leases_expired: u64,
    pub orders_created: u64,
    /// Time spent in successful attempts, in microseconds.
    pub processing_us_total: u64,
    pub queue_size_peak: u64,
    /// Gauges: messages in each live state now.
    pub queued: u64,
    pub processing: u64,
    pub dead_now: u64,
    /// Deliveries delivered (ever).
    pub deliveries_delivered: u64,
    /// Gauge: dead deliveries now.
    pub deliveries_dead: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageSummary {
    pub id: i64,
    pub received_at: String,
    /// The source it came in through (`[[sources]]`).
    pub source: String,
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
    pub source: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub failed_at: Option<String>,
    /// The first [`PAYLOAD_PREVIEW_BYTES`] of the body, never more: a listing's size is bounded
    /// by its `limit`, whatever was posted. The whole body is in [`MessageDetail`].
    pub payload_preview: Vec<u8>,
    /// The whole body's size in bytes.
    pub payload_size: u64,
}

/// How much of each body a listing carries (see [`DeadLetter::payload_preview`]).
pub const PAYLOAD_PREVIEW_BYTES: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    pub status: Option<MessageState>,
    /// Only messages of this source.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    /// Substring match on order number, email or product.
    pub q: Option<String>,
    /// Only orders of this source.
    pub source: Option<String>,
}

/// A webhook refused by its source's token or signature check, as the rejections log keeps
/// it: never the body or a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub id: i64,
    pub at: String,
    pub source: String,
    pub remote_addr: Option<String>,
    /// The refusal's code (`signature_invalid`, `token_invalid`, ...).
    pub reason: String,
    /// The request body's size in bytes (as declared when it was not read).
    pub size: u64,
}

/// What [`WriteOp::Reject`] records.
#[derive(Debug, Clone)]
pub struct NewRejection {
    pub at_ms: i64,
    pub source: String,
    pub remote_addr: Option<String>,
    /// The refusal's code.
    pub reason: &'static str,
    pub size: u64,
    /// `ingest.rejections_kept`: rows the log keeps.
    pub keep: u64,
}

/// One page of dead letters, oldest first, after a cursor.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    pub after_id: Option<i64>,
    pub limit: u32,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RejectionQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    pub source: Option<String>,
}

/// One source's durable totals (`source_counters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceCounters {
    pub received: u64,
    pub processed: u64,
    /// Attempts that failed (retried, or the last one before dead letters).
    pub failed: u64,
    /// Messages that went to dead letters (ever).
    pub dead: u64,
    /// Requests refused by the token or signature check.
    pub rejected: u64,
}

impl SourceCounters {
    /// Sets the counter stored under `name`; unknown names are left alone.
    pub fn set(&mut self, name: &str, value: u64) {
        match name {
            "received" => self.received = value,
            "processed" => self.processed = value,
            "failed" => self.failed = value,
            "dead" => self.dead = value,
            "rejected" => self.rejected = value,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOrder {
    pub id: i64,
    pub message_id: i64,
    /// The source of the message it came from.
    pub source: String,
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

/// One page of a listing read oldest first: ids above `after_id`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct PageAfter {
    pub after_id: i64,
    pub limit: u32,
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

/// How the storage itself is doing, in the backend's own terms: each figure is `None` where the
/// backend has no such thing or could not read it, never a made-up zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StorageHealth {
    /// The database's size: SQLite's file, PostgreSQL's `pg_database_size`.
    pub size_bytes: Option<u64>,
    /// Committed writes not yet copied into the database file: SQLite's write-ahead log.
    /// PostgreSQL's WAL is the server's own business, so it reports none.
    pub wal_bytes: Option<u64>,
    /// Free space and size of the file system holding the database, where it is local
    /// (SQLite); PostgreSQL's disk is the server's.
    pub disk: Option<crate::base::disk::DiskSpace>,
    /// When the oldest `queued` message was received (unix ms; `None`: nothing queued, or
    /// not readable): how far behind the workers are.
    pub oldest_queued_at_ms: Option<i64>,
}

/// How one committed batch moved the counters; the writer adds it to the live figures after
/// the commit, the store adds the totals to the durable `counters` table inside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterDelta {
    pub received: i64,
    pub duplicates: i64,
    pub processed: i64,
    pub dead: i64,
    pub retried: i64,
    pub requeued: i64,
    pub discarded: i64,
    pub purged: i64,
    pub leases_expired: i64,
    pub orders_created: i64,
    pub processing_us: i64,
    pub queued: i64,
    pub processing: i64,
    pub dead_now: i64,
    /// Deliveries: how the owed (`pending`, `sending`) ones moved (a live figure, counted
    /// from the rows), how many were delivered (a durable total: retention removes delivered
    /// rows) and how the dead ones moved (a gauge, stored where gauges are).
    pub deliveries_owed: i64,
    pub deliveries_delivered: i64,
    pub deliveries_dead: i64,
    /// The deliveries the batch made dead, however they died (a request's answer, their
    /// target dead when they were taken or created), grouped per target and error.
    pub deliveries_died: Vec<DeadDeliveries>,
    /// How the owed deliveries moved per target, by its masked label (the same moves as
    /// `deliveries_owed`, so the per-target figures always add up to it).
    pub owed_by_target: std::collections::BTreeMap<String, i64>,
}

/// Deliveries of one target that one commit made dead with the same error.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadDeliveries {
    /// The target, masked.
    pub label: String,
    pub error: String,
    /// The lowest id among them.
    pub first_id: i64,
    pub count: u64,
}

impl CounterDelta {
    /// How many deliveries the batch made dead.
    pub fn deliveries_died(&self) -> u64 {
        self.deliveries_died.iter().map(|d| d.count).sum()
    }

    /// The durable totals by their stored names.
    pub fn totals(&self) -> [(&'static str, i64); 12] {
        [
            ("received", self.received),
            ("duplicates", self.duplicates),
            ("processed", self.processed),
            ("dead", self.dead),
            ("retried", self.retried),
            ("requeued", self.requeued),
            ("discarded", self.discarded),
            ("purged", self.purged),
            ("leases_expired", self.leases_expired),
            ("orders_created", self.orders_created),
            ("processing_us_total", self.processing_us),
            ("deliveries_delivered", self.deliveries_delivered),
        ]
    }
}

/// How far a copy has got, after each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackupProgress {
    pub pages_done: u64,
    pub pages_total: u64,
    pub page_size: u32,
}

/// What a verified copy holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CopySummary {
    pub schema_version: i64,
    /// Messages per state (`processed`, `dead`, `queued`, ...), by state name.
    pub messages_by_state: Vec<(String, u64)>,
    pub orders: u64,
    pub bytes: u64,
}

impl CopySummary {
    pub fn messages(&self) -> u64 {
        self.messages_by_state.iter().map(|(_, n)| n).sum()
    }

    /// Messages in dead letters.
    pub fn dead_letters(&self) -> u64 {
        self.messages_by_state
            .iter()
            .find(|(s, _)| s == "dead")
            .map_or(0, |(_, n)| *n)
    }
}
