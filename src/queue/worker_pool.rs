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
use super::lease::Arbiter;
use super::{Job, ProcessError, Processor};
use crate::stats::LiveStats;
use crate::store::{OpOutcome, WriteOp, WriterHandle};
use crate::time::now_ms;

#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub workers: usize,
    pub max_retries: u32,
    pub backoff: Backoff,
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
    jobs: Receiver<Job>,
    writer: WriterHandle,
    signal: StopSignal,
    live: Arc<LiveStats>,
    /// Set when several nodes share the database (see `lease.rs`).
    arbiter: Option<Arbiter>,
}

impl WorkerPool {
    pub fn start(
        settings: WorkerSettings,
        processor: Arc<dyn Processor>,
        jobs: Receiver<Job>,
        writer: WriterHandle,
        signal: StopSignal,
        live: Arc<LiveStats>,
        arbiter: Option<Arbiter>,
    ) -> WorkerPool {
        live.workers_total.store(settings.workers, Relaxed);
        let threads = (0..settings.workers)
            .map(|i| {
                let worker = Worker {
                    settings,
                    processor: processor.clone(),
                    jobs: jobs.clone(),
                    writer: writer.clone(),
                    signal: signal.clone(),
                    live: live.clone(),
                    arbiter: arbiter.clone(),
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
    fn handle(&self, job: Job) {
        let mut attempt = job.attempts;
        loop {
            attempt += 1;
            if !self.claim(job.id) {
                return;
            }
            self.live.workers_busy.fetch_add(1, Relaxed);
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| self.processor.process(&job)));
            let took = started.elapsed();
            if let Some(a) = &self.arbiter {
                a.running.remove(job.id);
            }
            self.live.workers_busy.fetch_sub(1, Relaxed);
            self.live.processing_time.record(took);
            let error = match result {
                Ok(Ok(effect)) => {
                    self.writer.send(WriteOp::Complete {
                        id: job.id,
                        effect,
                        processing_ms: took.as_millis() as u64,
                    });
                    return;
                }
                Ok(Err(ProcessError::Permanent(error))) => {
                    self.writer.send(WriteOp::Dead { id: job.id, error });
                    return;
                }
                Err(panic) => {
                    let error = format!("processor panicked: {}", panic_message(&panic));
                    log::error!("message {}: {error}", job.id);
                    self.writer.send(WriteOp::Dead { id: job.id, error });
                    return;
                }
                Ok(Err(ProcessError::Transient(error))) => error,
            };
            if attempt > self.settings.max_retries {
                self.writer.send(WriteOp::Dead {
                    id: job.id,
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
                error,
                next_attempt_at_ms: now_ms() + delay.as_millis() as i64,
            });
            if !self.sleep(delay) {
                return;
            }
        }
    }

    /// Records the start of an attempt. With one node the claim is sent without waiting (it
    /// folds into the attempt's end); with several, the committed claim decides whether this
    /// node runs the attempt at all, and false means skip the message.
    fn claim(&self, id: i64) -> bool {
        let Some(a) = &self.arbiter else {
            self.writer.send(WriteOp::Claim { id });
            return true;
        };
        match self.writer.submit(WriteOp::Claim { id }, a.claim_timeout) {
            Ok(OpOutcome::Claimed) => {
                a.running.insert(id);
                true
            }
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
