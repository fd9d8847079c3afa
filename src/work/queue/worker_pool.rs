//! A fixed pool of plain OS threads. Each takes a job, records the attempt, runs the
//! processor (a panic is caught and becomes that message's permanent failure), and sends the
//! outcome to the writer. A failed attempt waits its backoff in a sleep that shutdown cuts
//! short; the attempt count is already on disk, so a crash during the wait does not reset it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use super::backoff::Backoff;
use super::{BodyLoader, Dispatcher, Loaded, ProcessError, Processor, QueuedJob};
use crate::base::lifecycle::{panic_message, Background, Stop};
use crate::base::shutdown::DrainDeadline;
use crate::base::time::now_ms;
use crate::store::{Lease, OpOutcome, WriteOp, WriterHandle};
use crate::work::stats::LiveStats;

#[derive(Clone)]
pub struct WorkerSettings {
    pub workers: usize,
    /// This node's lease on the messages its workers claim.
    pub lease: Lease,
    pub max_retries: u32,
    pub backoff: Backoff,
    /// Set when several nodes share the database.
    pub shared: Option<SharedClaims>,
}

/// Set when several nodes share the database (PostgreSQL). This node's dispatcher cannot stop
/// another node from taking the same message, so there the claim in the database decides: a
/// worker waits for its claim to commit before it runs the attempt, and a claim that finds the
/// message gone, finished or taken (`NotApplicable`) means skip it and release it here.
#[derive(Clone)]
pub struct SharedClaims {
    /// A skipped message leaves this node's in-flight set (another node has it, or the feeder
    /// hands it over again once it is queued).
    pub dispatcher: Dispatcher,
    /// How long a worker waits for its claim to commit.
    pub claim_timeout: Duration,
}

/// When a worker must stop: `stop` is given when the pool stops (workers then drain the
/// channel), `deadline` was set just before (after it they take nothing new).
#[derive(Clone)]
pub struct StopSignal {
    pub stop: Stop,
    pub deadline: DrainDeadline,
}

/// The pool of worker threads.
pub struct WorkerPool;

struct Worker {
    settings: WorkerSettings,
    processor: Arc<dyn Processor>,
    jobs: Receiver<QueuedJob>,
    bodies: BodyLoader,
    writer: WriterHandle,
    signal: StopSignal,
    live: Arc<LiveStats>,
}

impl WorkerPool {
    /// Starts the workers, as one component: its stop tells them to drain the channel until
    /// `deadline`, and a worker stuck in a processor past the stop's deadline is left behind
    /// (its message stays `processing` on disk and is recovered at the next start).
    pub fn start(
        settings: WorkerSettings,
        processor: Arc<dyn Processor>,
        jobs: Receiver<QueuedJob>,
        bodies: BodyLoader,
        writer: WriterHandle,
        deadline: DrainDeadline,
        live: Arc<LiveStats>,
    ) -> std::io::Result<Background> {
        live.workers_total.store(settings.workers, Relaxed);
        live.lease_s
            .store((settings.lease.duration_ms / 1000).max(0) as u64, Relaxed);
        let mut pool = Background::new("workers");
        for i in 0..settings.workers {
            let (settings, processor, jobs, bodies, writer, deadline, live) = (
                settings.clone(),
                processor.clone(),
                jobs.clone(),
                bodies.clone(),
                writer.clone(),
                deadline.clone(),
                live.clone(),
            );
            live.workers_running.fetch_add(1, Relaxed);
            let running = RunningGuard(live.clone());
            pool.spawn(format!("worker-{i}"), move |stop| {
                let _running = running;
                let worker = Worker {
                    settings,
                    processor,
                    jobs,
                    bodies,
                    writer,
                    signal: StopSignal { stop, deadline },
                    live,
                };
                worker.run();
            })?;
        }
        Ok(pool)
    }
}

/// Keeps `workers_running` true to life: it drops with the thread, however it ends.
struct RunningGuard(Arc<LiveStats>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.workers_running.fetch_sub(1, Relaxed);
    }
}

impl Worker {
    fn run(&self) {
        let mut stopping = false;
        loop {
            let job = if stopping {
                if self.signal.deadline.passed() {
                    return;
                }
                match self.jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                select! {
                    recv(self.jobs) -> job => match job {
                        Ok(job) => job,
                        Err(_) => return,
                    },
                    recv(self.signal.stop.receiver()) -> _ => {
                        stopping = true;
                        continue;
                    }
                }
            };
            self.handle(job);
        }
    }

    /// Runs attempts on one message until it is finished, dead, or shutdown interrupts its
    /// backoff (then it simply stays `queued` on disk).
    fn handle(&self, ticket: QueuedJob) {
        // The body is read now, on this thread, not carried through the channel.
        let mut job = match self.bodies.load(ticket) {
            Loaded::Job(job) => job,
            Loaded::BodyMissing(ticket) => return self.bury_without_body(ticket),
            Loaded::Nothing => return,
        };
        let mut attempt = job.attempts;
        loop {
            attempt += 1;
            if !self.claim(job.id, attempt) {
                return;
            }
            self.live.workers_busy.fetch_add(1, Relaxed);
            self.live.attempt_started(job.id);
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| self.processor.process(&job)));
            let took = started.elapsed();
            self.live.attempt_ended(job.id);
            self.live.workers_busy.fetch_sub(1, Relaxed);
            self.live.processing_time.record(took);
            let error = match result {
                Ok(Ok(effect)) => {
                    self.writer.send(WriteOp::Complete {
                        id: job.id,
                        attempt,
                        // The attempt ends here: the path moves on without a copy.
                        path: std::mem::take(&mut job.path),
                        effect,
                        processing_us: took.as_micros() as u64,
                    });
                    return;
                }
                Ok(Err(ProcessError::Permanent(error))) => {
                    self.writer.send(WriteOp::Dead {
                        id: job.id,
                        attempt,
                        error,
                    });
                    return;
                }
                Err(panic) => {
                    let error = format!("processor panicked: {}", panic_message(&*panic));
                    log::error!("message {}: {error}", job.id);
                    self.writer.send(WriteOp::Dead {
                        id: job.id,
                        attempt,
                        error,
                    });
                    return;
                }
                Ok(Err(ProcessError::Transient(error))) => error,
            };
            if attempt > self.settings.max_retries {
                self.writer.send(WriteOp::Dead {
                    id: job.id,
                    attempt,
                    error: format!("gave up after {attempt} attempts: {error}"),
                });
                return;
            }
            let delay = self.settings.backoff.with_jitter(attempt);
            log::debug!(
                "message {} attempt {attempt} failed ({error}); retrying in {delay:?}",
                job.id
            );
            self.writer.send(WriteOp::Retry {
                id: job.id,
                attempt,
                error,
                next_attempt_at_ms: now_ms() + delay.as_millis() as i64,
            });
            if !self.sleep(delay) {
                return;
            }
        }
    }

    /// A message stored without its body: one attempt, recorded as dead at once with the error
    /// "body missing" (it never runs the processor, and is not handed out again).
    fn bury_without_body(&self, ticket: QueuedJob) {
        let attempt = ticket.attempts + 1;
        if !self.claim(ticket.id, attempt) {
            return;
        }
        log::error!(
            "message {}: its body is missing from the database; moved to the dead letters",
            ticket.id
        );
        self.writer.send(WriteOp::Dead {
            id: ticket.id,
            attempt,
            error: "body missing".into(),
        });
    }

    /// Records the start of attempt `attempt`. The attempt's number goes with its claim and its
    /// outcome, so the store applies each only to this attempt whatever order a failing disk
    /// lands them in. With one node the claim is sent without waiting (it folds into the
    /// attempt's end); with several, the committed claim decides whether this node runs the
    /// attempt at all, and false means skip the message.
    fn claim(&self, id: i64, attempt: u32) -> bool {
        let op = WriteOp::Claim {
            id,
            attempt,
            lease: self.settings.lease.clone(),
        };
        let Some(a) = &self.settings.shared else {
            self.writer.send(op);
            return true;
        };
        match self.writer.submit(op, a.claim_timeout) {
            Ok(OpOutcome::Claimed) => true,
            Ok(other) => {
                log::debug!(
                    "message {id}: not claimed ({other:?}); another node has it or it is done"
                );
                a.dispatcher.release(id);
                false
            }
            Err(e) => {
                log::warn!("message {id}: the claim was not recorded ({e}); it stays queued");
                a.dispatcher.release(id);
                false
            }
        }
    }

    /// Sleeps `delay` unless shutdown begins first; false if it was cut short.
    fn sleep(&self, delay: Duration) -> bool {
        !self.signal.stop.sleep(delay)
    }
}
