//! The one thread that writes. Handlers and workers send it ops; it drains whatever is waiting,
//! commits it as one transaction (one fsync covers the whole batch: group commit), and only
//! then reports the commit to its [`CommitObserver`] and answers the handlers. This is what
//! makes "a 2xx means it is on disk" cheap. What a commit sets in motion (workers, events,
//! live figures) is the observer's business, not the store's.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::store::error::{StoreError, StoreResult};

use crate::store::model::{Effect, OpOutcome, WriteOp};

use crate::store::observer::CommitObserver;

use crate::base::lifecycle::{Component, Thread};
use crate::base::time::now_ms;
use crate::store::seam::WriteStore;

/// Most ops folded into one transaction; bounds how long one commit holds the others.
const MAX_BATCH: usize = 2048;
/// Inbox bound: when it is full, handlers wait, which is the right backpressure. Twice
/// [`MAX_BATCH`] lets a full batch build up while the previous one commits, so batches stay as
/// large as they can be; more only queues ops longer. It is also memory held from the start:
/// a bounded channel allocates and touches every slot up front, so a larger bound is paid in
/// idle RSS (`docs/performance.md`).
const INBOX: usize = 2 * MAX_BATCH;
/// How long a batch holding only worker outcomes may wait for company before it commits.
const WORKER_LINGER: Duration = Duration::from_millis(20);
/// Worker outcomes kept in memory while the disk refuses writes, and how often they are retried.
const MAX_PARKED: usize = 100_000;
const PARKED_RETRY: Duration = Duration::from_secs(1);
/// How soon housekeeping that failed (a checkpoint, a heartbeat) is tried again.
const MAINTAIN_RETRY: Duration = Duration::from_secs(1);

type Reply = Sender<StoreResult<OpOutcome>>;

// `Stop` is sent once per run; boxing every op to shrink it would cost an allocation per write.
#[allow(clippy::large_enum_variant)]
enum Request {
    Op(WriteOp, Option<Reply>),
    /// Finish what is queued, checkpoint, and exit.
    Stop,
}

/// A cheap, cloneable way to reach the writer.
#[derive(Clone)]
pub struct WriterHandle {
    inbox: Sender<Request>,
}

impl WriterHandle {
    /// Submits `op` and waits until its transaction is committed (or failed).
    pub fn submit(&self, op: WriteOp, timeout: Duration) -> StoreResult<OpOutcome> {
        let (tx, rx) = bounded(1);
        let deadline = std::time::Instant::now() + timeout;
        // A full inbox means the disk is not keeping up: wait, but never past the timeout.
        self.inbox
            .send_deadline(Request::Op(op, Some(tx)), deadline)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(_) => StoreError::Stalled(format!(
                    "the writer's inbox stayed full for {timeout:?}; the disk is not keeping up"
                )),
                crossbeam_channel::SendTimeoutError::Disconnected(_) => {
                    StoreError::Stopped("the writer has stopped".into())
                }
            })?;
        match rx.recv_deadline(deadline) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(StoreError::Stalled(format!(
                "no commit within {timeout:?}; the disk may be stalled"
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(StoreError::Stopped(
                "the writer stopped before committing".into(),
            )),
        }
    }

    /// Submits `op` without waiting: for workers, whose outcome is durable before the message
    /// leaves the in-flight set.
    pub fn send(&self, op: WriteOp) {
        if self.inbox.send(Request::Op(op, None)).is_err() {
            log::error!("writer has stopped; an outcome was not recorded (the message stays queued on disk)");
        }
    }
}

pub struct Writer {
    thread: Thread,
    inbox: Sender<Request>,
}

/// The writer's observer, owned by its thread.
type Observer = Box<dyn CommitObserver>;

impl Writer {
    /// Starts the writer thread on `store`; `observer` hears about every commit.
    pub fn start(
        store: Box<dyn WriteStore>,
        mut observer: Observer,
    ) -> std::io::Result<(Writer, WriterHandle)> {
        let (tx, rx) = bounded(INBOX);
        observer.writer_running(true);
        let thread = Thread::spawn("writer", move || run(store, rx, observer))?;
        Ok((
            Writer {
                thread,
                inbox: tx.clone(),
            },
            WriterHandle { inbox: tx },
        ))
    }
}

/// The writer is the one thread not told through a [`Stop`](crate::base::lifecycle::Stop): the stop
/// goes through its inbox, behind every op already sent, and it is waited for without a
/// deadline, so everything a caller was told is committed is on disk and the final
/// checkpoint runs before the process exits.
impl Component for Writer {
    fn name(&self) -> &'static str {
        "writer"
    }

    /// Commits everything already sent, checkpoints the WAL and waits for the thread.
    fn stop(self: Box<Self>, _deadline: Instant) -> usize {
        let _ = self.inbox.send(Request::Stop);
        self.thread.join();
        0
    }
}

fn run(mut store: Box<dyn WriteStore>, inbox: Receiver<Request>, mut observer: Observer) {
    let mut ops: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(MAX_BATCH);
    let mut parked: Vec<WriteOp> = Vec::new();
    let mut last_parked_try = Instant::now();
    let mut last_commit = Instant::now();
    // When the store next wants `maintain` while no op arrives; `None`: not until a commit.
    let mut maintain_due = maintain(&mut *store, Duration::ZERO);
    let mut stopping = false;
    let mut peak_written = 0;
    while !stopping {
        // Outcomes that could not be written (disk full) are tried again, first, once a second.
        let retry_parked = !parked.is_empty() && last_parked_try.elapsed() >= PARKED_RETRY;
        if retry_parked {
            last_parked_try = Instant::now();
            let before = parked.len();
            commit_parked(&mut *store, &mut parked, &mut *observer);
            if parked.is_empty() {
                log::info!("recorded {before} worker outcomes that had waited for the disk");
            }
        }
        // Sleep until an op arrives or something is due: housekeeping, or the parked outcomes'
        // next try. With neither, an idle writer does not wake at all.
        let parked_due = (!parked.is_empty()).then(|| last_parked_try + PARKED_RETRY);
        let wake_at = match (maintain_due, parked_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match wake_at {
            Some(at) => inbox.recv_deadline(at),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let first = match received {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                if maintain_due.is_some_and(|at| at <= Instant::now()) {
                    maintain_due = maintain(&mut *store, last_commit.elapsed());
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let taken = take_waiting(&inbox, first, &mut ops, &mut replies);
        stopping = taken.stop;
        // Nobody waits on a batch of worker outcomes alone: linger briefly so an attempt's claim
        // and its end share one commit (and fold into one row update) even at low rates.
        if !stopping && !taken.someone_waits {
            let deadline = Instant::now() + WORKER_LINGER;
            while ops.len() < MAX_BATCH {
                let Ok(req) = inbox.recv_deadline(deadline) else {
                    break;
                };
                let taken = take_waiting(&inbox, req, &mut ops, &mut replies);
                stopping = taken.stop;
                if taken.stop || taken.someone_waits {
                    break;
                }
            }
        }
        // The queue's high-water mark rides along with the batch when it rose.
        let peak = observer.queue_size_peak();
        if peak > peak_written {
            ops.push(WriteOp::QueueSizePeak { peak });
            replies.push(None);
            peak_written = peak;
        }
        let parked_before = parked.len();
        commit(
            &mut *store,
            &mut ops,
            &mut replies,
            &mut *observer,
            &mut parked,
        );
        if parked.len() > parked_before {
            log::warn!(
                "{} worker outcomes are waiting for the disk; they are retried every {PARKED_RETRY:?} (and survive a restart as queued work)",
                parked.len()
            );
        }
        last_commit = Instant::now();
        maintain_due = maintain(&mut *store, Duration::ZERO);
    }
    if !parked.is_empty() {
        // One last try; what still fails stays as it was on disk and resumes at the next start.
        commit_parked(&mut *store, &mut parked, &mut *observer);
        if !parked.is_empty() {
            log::warn!(
                "{} worker outcomes could not be written before the stop; their messages are processed again at the next start",
                parked.len()
            );
        }
    }
    if let Err(e) = store.close() {
        log::warn!(
            "final storage housekeeping (WAL checkpoint, leaving the node list) failed: {e}"
        );
    }
    observer.writer_running(false);
}

/// Runs the store's housekeeping; returns when it is next due (see [`WriteStore::maintain`]).
/// A failure is logged and tried again after [`MAINTAIN_RETRY`].
fn maintain(store: &mut dyn WriteStore, idle_for: Duration) -> Option<Instant> {
    match store.maintain(idle_for) {
        Ok(due) => due.map(|d| Instant::now() + d),
        Err(e) => {
            log::warn!("storage housekeeping (WAL checkpoint, heartbeat) failed: {e}");
            Some(Instant::now() + MAINTAIN_RETRY)
        }
    }
}

/// What [`take_waiting`] moved into the batch.
struct Taken {
    /// A stop request was among them.
    stop: bool,
    /// A handler waits on one of them (so the batch must not linger).
    someone_waits: bool,
}

/// Moves `first` and whatever else is already waiting (up to [`MAX_BATCH`]) into the batch.
fn take_waiting(
    inbox: &Receiver<Request>,
    first: Request,
    ops: &mut Vec<WriteOp>,
    replies: &mut Vec<Option<Reply>>,
) -> Taken {
    let mut taken = Taken {
        stop: false,
        someone_waits: false,
    };
    let mut next = Some(first);
    while let Some(req) = next.take() {
        let Request::Op(op, reply) = req else {
            // Whatever was sent before Stop still gets committed.
            taken.stop = true;
            next = inbox.try_recv().ok();
            continue;
        };
        taken.someone_waits |= reply.is_some();
        ops.push(op);
        replies.push(reply);
        if taken.stop || ops.len() < MAX_BATCH {
            next = inbox.try_recv().ok();
        }
    }
    taken
}

/// Commits the parked worker outcomes again; whatever still fails is parked again.
fn commit_parked(
    store: &mut dyn WriteStore,
    parked: &mut Vec<WriteOp>,
    observer: &mut dyn CommitObserver,
) {
    let mut ops = std::mem::take(parked);
    let mut replies = ops.iter().map(|_| None).collect();
    commit(store, &mut ops, &mut replies, observer, parked);
}

fn commit(
    store: &mut dyn WriteStore,
    ops: &mut Vec<WriteOp>,
    replies: &mut Vec<Option<Reply>>,
    observer: &mut dyn CommitObserver,
    parked: &mut Vec<WriteOp>,
) {
    hold_back(ops, replies, parked);
    if ops.is_empty() {
        return;
    }
    let started = Instant::now();
    match store.commit_batch(ops, now_ms()) {
        Ok((outcomes, delta)) => {
            observer.batch_committed(ops.len(), &delta);
            for ((op, outcome), reply) in ops.drain(..).zip(outcomes).zip(replies.drain(..)) {
                observer.committed(op, &outcome);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(outcome));
                }
            }
        }
        Err(e) if ops.len() > 1 => {
            // One bad op must not fail its neighbours: try each on its own.
            log::warn!(
                "batch of {} failed ({e}); retrying its ops one by one",
                ops.len()
            );
            let single_ops = std::mem::take(ops);
            let single_replies = std::mem::take(replies);
            for (op, reply) in single_ops.into_iter().zip(single_replies) {
                let (mut one_op, mut one_reply) = (vec![op], vec![reply]);
                commit(store, &mut one_op, &mut one_reply, observer, parked);
            }
        }
        Err(e) => {
            observer.commit_failed(&e);
            let op = ops.pop();
            let reply = replies.pop().flatten();
            match (&op, reply) {
                (_, Some(reply)) => {
                    let _ = reply.send(Err(e));
                }
                (Some(_), None) if parked.len() < MAX_PARKED => {
                    // A worker's outcome: keep it and try again; the message stays in flight.
                    parked.extend(op);
                }
                (Some(op), None) => {
                    log::error!("could not record {}: {e}; it stays as it was on disk and is retried after a restart", describe(op));
                    observer.dropped(op, &e);
                }
                (None, None) => {}
            }
        }
    }
    log::trace!("commit took {:?}", started.elapsed());
}

/// The message a worker's op is about (claims and outcomes; nobody waits on those).
fn worker_message(op: &WriteOp) -> Option<i64> {
    match op {
        WriteOp::Claim { id, .. }
        | WriteOp::Complete { id, .. }
        | WriteOp::Retry { id, .. }
        | WriteOp::Dead { id, .. } => Some(*id),
        _ => None,
    }
}

/// Per-message order: a worker's op for a message that already has an op parked (waiting for
/// the disk) is parked behind it instead of being applied first. Without this, an attempt's
/// outcome could land before its own claim, or a retry's next attempt before the retry; the
/// attempt numbers the ops carry make such a late op do nothing, and this keeps it from
/// being late in the first place.
fn hold_back(ops: &mut Vec<WriteOp>, replies: &mut Vec<Option<Reply>>, parked: &mut Vec<WriteOp>) {
    if parked.is_empty() {
        return;
    }
    let waiting: HashSet<i64> = parked.iter().filter_map(worker_message).collect();
    if !ops
        .iter()
        .any(|op| worker_message(op).is_some_and(|id| waiting.contains(&id)))
    {
        return;
    }
    let mut kept_ops = Vec::with_capacity(ops.len());
    let mut kept_replies = Vec::with_capacity(ops.len());
    for (op, reply) in ops.drain(..).zip(replies.drain(..)) {
        match (worker_message(&op), &reply) {
            (Some(id), None) if waiting.contains(&id) => parked.push(op),
            _ => {
                kept_ops.push(op);
                kept_replies.push(reply);
            }
        }
    }
    *ops = kept_ops;
    *replies = kept_replies;
}

fn describe(op: &WriteOp) -> String {
    match op {
        WriteOp::Append(_) => "a new message".into(),
        WriteOp::Claim { id, attempt, .. } => {
            format!("the start of attempt {attempt} on message {id}")
        }
        WriteOp::Complete { id, effect, .. } => match effect {
            Effect::Nothing => format!("message {id} as processed"),
            Effect::Order(o) => format!("order {} of message {id}", o.order_number),
        },
        WriteOp::Retry { id, .. } => format!("a retry of message {id}"),
        WriteOp::Dead { id, .. } => format!("message {id} as dead"),
        WriteOp::RequeueDead { .. } => "a dead-letter retry".into(),
        WriteOp::Discard { id, .. } => format!("the discard of message {id}"),
        WriteOp::PurgeProcessed { .. } => "a retention purge".into(),
        WriteOp::PurgeDeliveries { .. } => "a retention purge of deliveries".into(),
        WriteOp::Rederive { id, .. } => format!("a re-derived order of message {id}"),
        WriteOp::RenewLeases { .. } => "a lease renewal".into(),
        WriteOp::QueueSizePeak { peak } => format!("the queue's peak size ({peak})"),
        WriteOp::Deliver(_) => "a new delivery".into(),
        WriteOp::TakeDeliveries { .. } => "the take of a target's next delivery".into(),
        WriteOp::DeliveryOutcome { id, .. } => format!("the outcome of delivery {id}"),
        WriteOp::RetryDeliveries { .. } => "a delivery retry".into(),
        WriteOp::DiscardDelivery { id, .. } => format!("the discard of delivery {id}"),
        WriteOp::ReleaseDeliveries { .. } => "the release of this node's deliveries".into(),
        WriteOp::Reject(r) => format!("a rejection for source {}", r.source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::faults::Faults;
    use crate::store::model::{CounterDelta, Lease, MessageState, NewMessage};

    struct Quiet;

    impl CommitObserver for Quiet {
        fn writer_running(&mut self, _: bool) {}
        fn queue_size_peak(&self) -> u64 {
            0
        }
        fn batch_committed(&mut self, _: usize, _: &CounterDelta) {}
        fn committed(&mut self, _: WriteOp, _: &OpOutcome) {}
        fn commit_failed(&mut self, _: &StoreError) {}
        fn dropped(&mut self, _: &WriteOp, _: &StoreError) {}
    }

    fn run_batch(store: &mut dyn WriteStore, ops: Vec<WriteOp>, parked: &mut Vec<WriteOp>) {
        let mut replies = ops.iter().map(|_| None).collect();
        let mut ops = ops;
        commit(store, &mut ops, &mut replies, &mut Quiet, parked);
    }

    /// A retry parked by a failed commit must land before the next attempt's claim and
    /// outcome, which arrive meanwhile: they wait behind it and all three land in order.
    #[test]
    fn worker_ops_wait_behind_a_parked_op_of_the_same_message() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::settings::StorageSettings {
            path: dir.path().join("w.db"),
            ..Default::default()
        };
        let faults = Faults::new();
        let (store, reader) = crate::store::backend::open_node(
            &settings,
            &crate::store::backend::NodeIdentity {
                id: "n:1".into(),
                lease: Duration::from_secs(30),
            },
            Some(faults.clone()),
        )
        .map(|o| (o.writer, o.reader))
        .unwrap();
        let mut store = store;
        let lease = Lease {
            owner: "n:1".into(),
            duration_ms: 30_000,
        };
        let claim = |attempt| WriteOp::Claim {
            id: 1,
            attempt,
            lease: lease.clone(),
        };
        let mut parked = Vec::new();
        run_batch(
            &mut store,
            vec![WriteOp::Append(NewMessage {
                source: "orders".into(),
                received_at_ms: 1,
                path: "/p".into(),
                remote_addr: None,
                headers_json: "{}".into(),
                payload: b"{}".to_vec(),
                idem_key: None,
                deliveries: Vec::new(),
            })],
            &mut parked,
        );
        run_batch(&mut store, vec![claim(1)], &mut parked);
        faults.fail_next(1);
        let retry = WriteOp::Retry {
            id: 1,
            attempt: 1,
            error: "later".into(),
            next_attempt_at_ms: 0,
        };
        run_batch(&mut store, vec![retry], &mut parked);
        assert_eq!(parked.len(), 1, "the failed retry is parked");
        let done = WriteOp::Complete {
            id: 1,
            attempt: 2,
            path: "/p".into(),
            effect: crate::store::model::Effect::Nothing,
            processing_us: 1,
        };
        run_batch(&mut store, vec![claim(2), done], &mut parked);
        assert_eq!(parked.len(), 3, "the next attempt waits behind the retry");
        assert_eq!(
            reader.message(1).unwrap().unwrap().summary.status,
            MessageState::Processing
        );
        commit_parked(&mut store, &mut parked, &mut Quiet);
        assert!(parked.is_empty());
        let m = reader.message(1).unwrap().unwrap().summary;
        assert_eq!((m.status, m.attempts), (MessageState::Processed, 2));
    }
}
