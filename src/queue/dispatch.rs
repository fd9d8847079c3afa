//! Hands jobs to the workers without ever blocking the writer. A message is handed over at
//! most once at a time: the in-flight set makes sure the writer's fast path and the feeder's
//! scan never both hand over the same message.
//!
//! The feeder reads `queued` rows from a snapshot that can be a moment old: a message it read
//! as queued may have been processed and finished since. So finished messages are remembered
//! for a while (the most recent [`RECENT`]) and refused too, and the feeder re-reads its page
//! when more messages than that finished while it held one (see [`Dispatcher::finished`]).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};

use super::fresh_bodies::FreshBodies;
use super::QueuedJob;

/// How many recently finished messages are remembered.
pub const RECENT: usize = 16_384;

#[derive(Default)]
struct Flight {
    in_flight: HashSet<i64>,
    recent: VecDeque<i64>,
    recent_set: HashSet<i64>,
    finished: u64,
}

#[derive(Clone)]
pub struct Dispatcher {
    jobs: Sender<QueuedJob>,
    flight: Arc<Mutex<Flight>>,
    wake: Sender<()>,
    /// Bodies of jobs offered on the fast path, for the worker that starts them.
    fresh: Arc<FreshBodies>,
}

/// The receiving ends: jobs for the workers, wake-ups for the feeder.
pub struct DispatchReceivers {
    pub jobs: Receiver<QueuedJob>,
    pub wake: Receiver<()>,
}

impl Dispatcher {
    pub fn new(capacity: usize) -> (Dispatcher, DispatchReceivers) {
        let (jobs_tx, jobs_rx) = bounded(capacity);
        let (wake_tx, wake_rx) = bounded(1);
        (
            Dispatcher {
                jobs: jobs_tx,
                flight: Arc::new(Mutex::new(Flight::default())),
                wake: wake_tx,
                fresh: Arc::new(FreshBodies::default()),
            },
            DispatchReceivers {
                jobs: jobs_rx,
                wake: wake_rx,
            },
        )
    }

    /// The fast path after a commit. When the channel is full the message simply stays
    /// `queued` on disk and the feeder is told to look.
    pub fn offer(&self, job: QueuedJob) {
        self.offer_with_body(job, None);
    }

    /// [`Dispatcher::offer`] with the body just committed: kept for the worker that takes the
    /// job (see [`FreshBodies`]), so it need not read it back. Kept before the ticket goes
    /// out, so the worker cannot look before it is there.
    pub fn offer_with_body(&self, job: QueuedJob, body: Option<Vec<u8>>) {
        let id = job.id;
        if !self.claim(id) {
            return;
        }
        let kept = body.map(|b| self.fresh.keep(id, b)).is_some();
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                // The feeder hands it over later, maybe much later: read it back then.
                if kept {
                    self.fresh.forget(id);
                }
                self.release(id);
                self.wake_feeder();
            }
        }
    }

    /// The body kept for message `id` when it was offered, taken; `None` when there is none
    /// (read it from the store).
    pub fn take_fresh_body(&self, id: i64) -> Option<Vec<u8>> {
        self.fresh.take(id)
    }

    /// Blocks until the job is taken or `stop` fires; for the feeder only.
    pub fn send_or_stop(&self, job: QueuedJob, stop: &Receiver<()>) -> bool {
        let id = job.id;
        if !self.claim(id) {
            return true;
        }
        select! {
            send(self.jobs, job) -> r => {
                if r.is_err() { self.release(id); }
                r.is_ok()
            }
            recv(stop) -> _ => { self.release(id); false }
        }
    }

    /// Marks `id` as handed over; false if it already is, or finished recently.
    pub fn claim(&self, id: i64) -> bool {
        self.flight
            .lock()
            .map(|mut f| !f.recent_set.contains(&id) && f.in_flight.insert(id))
            .unwrap_or(false)
    }

    /// The message was not handed over after all (or its outcome could not be recorded).
    pub fn release(&self, id: i64) {
        if let Ok(mut f) = self.flight.lock() {
            f.in_flight.remove(&id);
        }
    }

    /// The message's final state is committed: it leaves the workers' hands for good.
    pub fn finish(&self, id: i64) {
        if let Ok(mut f) = self.flight.lock() {
            f.in_flight.remove(&id);
            if f.recent_set.insert(id) {
                f.recent.push_back(id);
            }
            while f.recent.len() > RECENT {
                if let Some(old) = f.recent.pop_front() {
                    f.recent_set.remove(&old);
                }
            }
            f.finished += 1;
        }
    }

    /// An operator requeued finished messages (`None`: all dead letters): they may be handed
    /// over again.
    pub fn forget(&self, id: Option<i64>) {
        if let Ok(mut f) = self.flight.lock() {
            match id {
                Some(id) => {
                    if f.recent_set.remove(&id) {
                        f.recent.retain(|&r| r != id);
                    }
                }
                None => {
                    f.recent.clear();
                    f.recent_set.clear();
                }
            }
        }
    }

    /// The messages handed over and not yet finished (in the channel, in a worker's hands, or
    /// with an outcome on its way to the disk), sorted: the lease keeper renews their leases.
    pub fn in_flight_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .flight
            .lock()
            .map(|f| f.in_flight.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// How many messages have finished so far: a reader holding rows read before more than
    /// [`RECENT`] finished since must read them again.
    pub fn finished(&self) -> u64 {
        self.flight.lock().map(|f| f.finished).unwrap_or(0)
    }

    pub fn wake_feeder(&self) {
        let _ = self.wake.try_send(());
    }

    /// Jobs waiting in the channel (not yet taken by a worker).
    pub fn channel_len(&self) -> usize {
        self.jobs.len()
    }

    pub fn channel_capacity(&self) -> usize {
        self.jobs.capacity().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64) -> QueuedJob {
        QueuedJob {
            id,
            path: "/p".into(),
            attempts: 0,
            size: 0,
        }
    }

    #[test]
    fn full_channel_leaves_the_job_for_the_feeder() {
        let (d, rx) = Dispatcher::new(1);
        d.offer(job(1));
        d.offer(job(2));
        assert_eq!(rx.jobs.try_recv().unwrap().id, 1);
        assert!(rx.jobs.try_recv().is_err());
        assert!(rx.wake.try_recv().is_ok(), "feeder was not woken");
        assert!(
            d.claim(2),
            "a job that did not fit must not stay marked in flight"
        );
    }

    #[test]
    fn a_message_is_handed_over_once() {
        let (d, rx) = Dispatcher::new(4);
        d.offer(job(7));
        d.offer(job(7));
        let (_stop_tx, stop) = bounded::<()>(0);
        assert!(d.send_or_stop(job(7), &stop));
        assert_eq!(rx.jobs.len(), 1);
        d.release(7);
        d.offer(job(7));
        assert_eq!(rx.jobs.len(), 2);
    }

    #[test]
    fn a_finished_message_read_from_a_stale_snapshot_is_refused_until_requeued() {
        let (d, rx) = Dispatcher::new(4);
        d.offer(job(9));
        rx.jobs.try_recv().unwrap();
        d.finish(9);
        assert_eq!(d.finished(), 1);
        // The feeder read message 9 as queued before it finished: it must not go out again.
        d.offer(job(9));
        assert!(rx.jobs.try_recv().is_err());
        // An operator requeues it: now it may.
        d.forget(Some(9));
        d.offer(job(9));
        assert_eq!(rx.jobs.try_recv().unwrap().id, 9);
        d.finish(9);
        d.forget(None);
        assert!(d.claim(9));
    }

    #[test]
    fn an_offered_body_waits_for_its_worker_unless_the_job_did_not_fit() {
        let (d, rx) = Dispatcher::new(1);
        d.offer_with_body(job(1), Some(b"one".to_vec()));
        d.offer_with_body(job(2), Some(b"two".to_vec()));
        assert_eq!(rx.jobs.try_recv().unwrap().id, 1);
        assert_eq!(d.take_fresh_body(1).as_deref(), Some(&b"one"[..]));
        assert_eq!(
            d.take_fresh_body(2),
            None,
            "a job left to the feeder must not hold its body"
        );
        assert_eq!(d.fresh.held(), (0, 0));
    }

    #[test]
    fn the_recent_memory_is_bounded() {
        let (d, _rx) = Dispatcher::new(1);
        for id in 0..(RECENT as i64 + 10) {
            d.finish(id);
        }
        assert!(d.claim(0), "the oldest finished ids are forgotten");
        assert!(!d.claim(RECENT as i64 + 5));
    }
}
