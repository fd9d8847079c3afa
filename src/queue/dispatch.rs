//! Hands jobs to the workers without ever blocking the writer. A job is in exactly one place
//! at a time: the in-flight set makes sure the writer's fast path and the feeder's scan never
//! both hand over the same message.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};

use super::Job;

#[derive(Clone)]
pub struct Dispatcher {
    jobs: Sender<Job>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    wake: Sender<()>,
}

/// The receiving ends: jobs for the workers, wake-ups for the feeder.
pub struct DispatchReceivers {
    pub jobs: Receiver<Job>,
    pub wake: Receiver<()>,
}

impl Dispatcher {
    pub fn new(capacity: usize) -> (Dispatcher, DispatchReceivers) {
        let (jobs_tx, jobs_rx) = bounded(capacity);
        let (wake_tx, wake_rx) = bounded(1);
        (
            Dispatcher {
                jobs: jobs_tx,
                in_flight: Arc::new(Mutex::new(HashSet::new())),
                wake: wake_tx,
            },
            DispatchReceivers {
                jobs: jobs_rx,
                wake: wake_rx,
            },
        )
    }

    /// The fast path after a commit. When the channel is full the message simply stays
    /// `queued` on disk and the feeder is told to look.
    pub fn offer(&self, job: Job) {
        let id = job.id;
        if !self.claim(id) {
            return;
        }
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.release(id);
                self.wake_feeder();
            }
        }
    }

    /// Blocks until the job is taken or `stop` fires; for the feeder only.
    pub fn send_or_stop(&self, job: Job, stop: &Receiver<()>) -> bool {
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

    /// Marks `id` as handed over; false if it already is.
    pub fn claim(&self, id: i64) -> bool {
        self.in_flight
            .lock()
            .map(|mut s| s.insert(id))
            .unwrap_or(false)
    }

    /// The message left the workers' hands for good (its final state is committed) or was
    /// never handed over.
    pub fn release(&self, id: i64) {
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&id);
        }
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

    fn job(id: i64) -> Job {
        Job {
            id,
            path: "/p".into(),
            payload: vec![],
            attempts: 0,
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
}
