//! A fixed pool of plain OS threads. Each takes a job, records the attempt, runs the
//! processor (a panic is caught and becomes that message's permanent failure), and sends the
//! outcome to the writer. A failed attempt waits its backoff in a sleep that shutdown cuts
//! short; the attempt count is already on disk, so a crash during the wait does not reset it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, RecvTimeoutError};

use super::backoff::Backoff;
use super::{BodyLoader, Dispatcher, Loaded, ProcessError, Processor, QueuedJob};
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

/// When the pool must stop: `stop` disconnects when shutdown begins (workers then drain the
/// channel), `deadline` is set at the same time (after it they take nothing new).
#[derive(Clone)]
pub struct StopSignal {
    pub stop: Receiver<()>,
    pub deadline: Arc<OnceLock<Instant>>,
}

pub struct WorkerPool {
    threads: Vec<JoinHandle<()>>,
}

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
    pub fn start(
        settings: WorkerSettings,
        processor: Arc<dyn Processor>,
        jobs: Receiver<QueuedJob>,
        bodies: BodyLoader,
        writer: WriterHandle,
        signal: StopSignal,
        live: Arc<LiveStats>,
    ) -> WorkerPool {
        live.workers_total.store(settings.workers, Relaxed);
        live.lease_s
            .store((settings.lease.duration_ms / 1000).max(0) as u64, Relaxed);
        let threads = (0..settings.workers)
            .map(|i| {
                let worker = Worker {
                    settings: settings.clone(),
                    processor: processor.clone(),
                    jobs: jobs.clone(),
                    bodies: bodies.clone(),
                    writer: writer.clone(),
                    signal: signal.clone(),
                    live: live.clone(),
                };
                live.workers_running.fetch_add(1, Relaxed);
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        let _running = RunningGuard(worker.live.clone());
                        worker.run();
                    })
                    .expect("spawn worker thread")
            })
            .collect();
        WorkerPool { threads }
    }

    /// Waits for the workers until `until`; a worker stuck in a processor past that is left
    /// behind (its message stays `processing` on disk and is recovered at the next start).
    pub fn join(self, until: Instant) -> usize {
        let mut left_behind = 0;
        for t in self.threads {
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                left_behind += 1;
            }
        }
        left_behind
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
                let past_deadline = self
                    .signal
                    .deadline
                    .get()
                    .is_some_and(|d| Instant::now() >= *d);
                if past_deadline {
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
                    recv(self.signal.stop) -> _ => {
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
                    let error = format!("processor panicked: {}", panic_message(&panic));
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
        matches!(
            self.signal.stop.recv_timeout(delay),
            Err(RecvTimeoutError::Timeout)
        )
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}
