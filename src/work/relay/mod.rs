//! The relay: durable deliveries of stored messages (and alerts) to Discord webhooks and
//! other HTTP targets, in order per target and at each target's own pace (docs/relay.md).
//!
//! * [`Relay::enqueue`] — the internal entry point: "deliver body B with content type C and
//!   headers H to target T", durable once it returns;
//! * `scheduler` — one thread that sleeps until the next target is due (a new delivery, a
//!   rate-limit pause or a backoff ending) and hands due targets to the workers;
//! * `worker` — a few threads that take a target's next delivery
//!   through the writer, send it, and record the outcome; they never wait for a rate limit;
//! * [`pacing`] — what a target's answer says about the next request;
//! * [`sender`] — the HTTP request (ureq) and what an answer means.

pub mod pacing;
mod scheduler;
pub mod sender;
mod waiters;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::base::lifecycle::Background;
use crate::settings::RelaySettings;
use crate::store::{
    Lease, NewDelivery, OpOutcome, ReadStore, StoreError, StoreResult, TargetKind, WriteOp,
    WriterHandle,
};
use crate::work::queue::backoff::Backoff;

pub use crate::work::stats::LiveStats;
pub use waiters::RelayAnswer;

/// What the scheduler hears: owed work on a target, a worker's report, or a rescan.
#[derive(Debug)]
pub enum Signal {
    /// A delivery to `target` was committed (or is owed again).
    Owed { target: String, kind: TargetKind },
    /// Deliveries changed in ways the scheduler cannot follow one by one (an operator's
    /// retry): read the owed targets from the database again.
    Rescan,
    /// A worker's report on a target it was handed.
    Report(worker::Report),
}

/// Where commits tell the relay about new deliveries (the pipeline holds one).
#[derive(Clone)]
pub struct RelayWake(Sender<Signal>);

impl RelayWake {
    pub fn owed(&self, target: &str, kind: TargetKind) {
        let _ = self.0.send(Signal::Owed {
            target: target.to_string(),
            kind,
        });
    }

    pub fn rescan(&self) {
        let _ = self.0.send(Signal::Rescan);
    }
}

/// The scheduler's inbox, made before the writer (whose pipeline wakes it) and handed to
/// [`Relay::start`] after.
pub struct RelayInbox {
    tx: Sender<Signal>,
    rx: Receiver<Signal>,
}

impl RelayInbox {
    pub fn new() -> RelayInbox {
        let (tx, rx) = unbounded();
        RelayInbox { tx, rx }
    }

    pub fn wake(&self) -> RelayWake {
        RelayWake(self.tx.clone())
    }
}

impl Default for RelayInbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A delivery to make, for [`Relay::enqueue`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The full URL (a token in it is masked wherever it is shown).
    pub target: String,
    /// `Discord` paces by Discord's headers and treats its unknown-webhook answers as the
    /// target's end; `Http` is a plain POST.
    pub kind: TargetKind,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// Extra request headers, sent as given.
    pub headers: Vec<(String, String)>,
}

/// How long [`Relay::enqueue`] waits for its commit.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay as the rest of the program sees it: enqueue a delivery, wait for one's answer,
/// read the figures. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    writer: WriterHandle,
    waiters: Arc<waiters::Waiters>,
}

/// What the relay needs to run.
pub struct RelayStart {
    pub settings: RelaySettings,
    pub backoff: Backoff,
    pub lease: Lease,
    pub writer: WriterHandle,
    pub reader: Arc<dyn ReadStore>,
    /// Other nodes share the deliveries: look for their leftovers once a second.
    pub shared: bool,
    pub live: Arc<LiveStats>,
}

/// Worker threads: enough to keep several targets busy at once; a target is only ever
/// handed to `relay.concurrency` of them at a time.
const WORKERS: usize = 4;

impl Relay {
    /// Starts the scheduler and the workers, as one component. This node's unfinished
    /// requests from a previous run are owed again first.
    pub fn start(
        start: RelayStart,
        inbox: RelayInbox,
    ) -> crate::base::error::Result<(Relay, Background)> {
        start.writer.submit(
            WriteOp::ReleaseDeliveries {
                owner: start.lease.owner.to_string(),
            },
            ENQUEUE_TIMEOUT,
        )?;
        let waiters = Arc::new(waiters::Waiters::default());
        let (jobs_tx, jobs_rx) = unbounded();
        let mut threads = Background::new("relay");
        for i in 0..WORKERS.max(start.settings.concurrency as usize) {
            let ctx = worker::Context {
                writer: start.writer.clone(),
                lease: start.lease.clone(),
                concurrency: start.settings.concurrency,
                sender: sender::Sender::new(
                    Duration::from_secs(start.settings.timeout_s),
                    start.settings.max_attempts,
                    start.backoff,
                ),
                jobs: jobs_rx.clone(),
                reports: inbox.tx.clone(),
                waiters: waiters.clone(),
                live: start.live.clone(),
            };
            // A worker ends when the scheduler, its only source of work, has stopped and
            // what it handed over is sent: not on the stop itself.
            threads
                .spawn(format!("relay-{i}"), move |_| worker::run(ctx))
                .map_err(|e| crate::base::error::Error::Other(e.to_string()))?;
        }
        let scheduler = scheduler::Scheduler::new(
            start.settings.concurrency,
            start.reader.clone(),
            jobs_tx,
            start.live.clone(),
            start.shared,
        );
        let rx = inbox.rx;
        threads
            .spawn("relay-scheduler", move |stop| scheduler.run(rx, stop))
            .map_err(|e| crate::base::error::Error::Other(e.to_string()))?;
        Ok((
            Relay {
                writer: start.writer,
                waiters,
            },
            threads,
        ))
    }

    /// Enqueues a delivery of its own (not tied to a stored message): durable once this
    /// returns its id; a dead target takes it as a dead letter at once. Blocks for the commit
    /// (at most 10 s); never call it from the writer thread.
    pub fn enqueue(&self, out: Outgoing) -> StoreResult<i64> {
        let delivery = NewDelivery {
            target: out.target,
            kind: out.kind,
            content_type: out.content_type,
            headers_json: crate::store::headers_json(&out.headers),
            body: Some(out.body),
        };
        match self
            .writer
            .submit(WriteOp::Deliver(delivery), ENQUEUE_TIMEOUT)?
        {
            OpOutcome::DeliveryQueued { id } => Ok(id),
            other => Err(StoreError::Other(format!(
                "a delivery was answered {other:?}"
            ))),
        }
    }

    /// Waits up to `timeout` for the first answer the target gives to message `message_id`'s
    /// delivery (`?wait=true`); `None` when none came in time.
    pub fn wait_for(&self, message_id: i64, timeout: Duration) -> Option<RelayAnswer> {
        self.waiters.wait(message_id, timeout)
    }
}
