//! Hands jobs to the workers without ever blocking the writer. A message is handed over at
//! most once at a time: the in-flight set makes sure the writer's fast path and the feeder's
//! scan never both hand over the same message.
//!
//! The feeder reads `queued` rows from a snapshot that can be a moment old: a message it read
//! as queued may have been processed and finished since. So finished messages are remembered
//! for a while (the most recent [`RECENT`]) and refused too, and the feeder re-reads its page
//! when more messages than that finished while it held one (see [`Dispatcher::finished`]).
//!
//! It also carries the two signals that let the feeder and the lease keeper sleep while there
//! is nothing to do instead of polling: when the feeder should look
//! at the database next ([`Dispatcher::wake_feeder_at`]), and that messages are in hand again
//! after none were ([`Dispatcher::work_started`], for the lease keeper).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};

use super::fresh_bodies::FreshBodies;
use super::QueuedJob;
use crate::base::time::now_ms;
use crate::work::stats::QueueView;

/// How many recently finished messages are remembered.
pub const RECENT: usize = 16_384;
/// A message released from the in-flight set (its body or its outcome could not be read or
/// written) is looked for again this much later: soon, but not in a tight loop against a
/// failing store. The same delay as the feeder's poll had before it slept between wake-ups.
const RELEASED_LOOK_AGAIN_MS: i64 = 1_000;
/// No feeder pass asked for.
const NO_REQUEST: i64 = i64::MAX;

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
    /// The earliest time (unix ms) someone asked the feeder to look ([`NO_REQUEST`]: nobody);
    /// the feeder takes it when `wake` rouses it.
    feeder_request: Arc<AtomicI64>,
    /// One token when messages came into hand after none were; the lease keeper sleeps on it.
    work_started: (Sender<()>, Receiver<()>),
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
                feeder_request: Arc::new(AtomicI64::new(NO_REQUEST)),
                work_started: bounded(1),
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
                self.unmark(id);
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
                if r.is_err() { self.unmark(id); }
                r.is_ok()
            }
            recv(stop) -> _ => { self.unmark(id); false }
        }
    }

    /// Marks `id` as handed over; false if it already is, or finished recently. The first
    /// message in hand after none were tells the lease keeper (one token, so a busy node
    /// pays a failed `try_send` at most, and only when its in-flight set had emptied).
    pub fn claim(&self, id: i64) -> bool {
        let (claimed, first) = self
            .flight
            .lock()
            .map(|mut f| {
                let was_empty = f.in_flight.is_empty();
                let claimed = !f.recent_set.contains(&id) && f.in_flight.insert(id);
                (claimed, claimed && was_empty)
            })
            .unwrap_or((false, false));
        if first {
            let _ = self.work_started.0.try_send(());
        }
        claimed
    }

    /// The message was not handed over after all (or its outcome could not be recorded). It
    /// waits on disk and only the feeder hands it over again, so the feeder is asked to look
    /// a moment from now.
    pub fn release(&self, id: i64) {
        self.unmark(id);
        self.wake_feeder_at(now_ms() + RELEASED_LOOK_AGAIN_MS);
    }

    /// `id` leaves the in-flight set; the caller sees to the feeder.
    fn unmark(&self, id: i64) {
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

    /// Asks the feeder to look at the database now.
    pub fn wake_feeder(&self) {
        self.wake_feeder_at(i64::MIN);
    }

    /// Asks the feeder to look at the database at `at_ms` (unix ms) or earlier. The request
    /// is recorded before the wake-up is sent, so a feeder that takes the requests after
    /// waking never misses one (a wake-up already pending covers a request made later).
    pub fn wake_feeder_at(&self, at_ms: i64) {
        self.feeder_request.fetch_min(at_ms, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }

    /// For the feeder: the earliest time a pass was asked for since the last call, if any.
    pub fn take_feeder_request(&self) -> Option<i64> {
        match self.feeder_request.swap(NO_REQUEST, Ordering::SeqCst) {
            NO_REQUEST => None,
            at => Some(at),
        }
    }

    /// For the lease keeper: holds a token whenever messages came into hand after none were
    /// (see [`Dispatcher::claim`]).
    pub fn work_started(&self) -> Receiver<()> {
        self.work_started.1.clone()
    }

    /// Whether no message is handed over and unfinished.
    pub fn nothing_in_flight(&self) -> bool {
        self.flight
            .lock()
            .map(|f| f.in_flight.is_empty())
            .unwrap_or(false)
    }

    /// Jobs waiting in the channel (not yet taken by a worker).
    pub fn channel_len(&self) -> usize {
        self.jobs.len()
    }

    pub fn channel_capacity(&self) -> usize {
        self.jobs.capacity().unwrap_or(0)
    }
}

/// The queue's side of the stats' figures: the stats own the type, the queue fills it in, so
/// the stats need not import the queue.
impl QueueView {
    /// The channel as it is now, against the configured backlog limit.
    pub fn of(dispatcher: &Dispatcher, max_backlog: u64) -> QueueView {
        QueueView {
            channel_len: dispatcher.channel_len(),
            channel_capacity: dispatcher.channel_capacity(),
            max_backlog,
        }
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
    fn the_feeder_gets_the_earliest_time_asked_for_once() {
        let (d, rx) = Dispatcher::new(4);
        assert_eq!(d.take_feeder_request(), None);
        d.wake_feeder_at(5_000);
        d.wake_feeder_at(3_000);
        d.wake_feeder_at(9_000);
        assert!(rx.wake.try_recv().is_ok(), "feeder was not woken");
        assert_eq!(d.take_feeder_request(), Some(3_000));
        assert_eq!(d.take_feeder_request(), None, "taken once");
        d.wake_feeder();
        assert!(d.take_feeder_request().unwrap() <= now_ms(), "now");
    }

    #[test]
    fn a_released_message_asks_the_feeder_to_look_again_soon() {
        let (d, _rx) = Dispatcher::new(4);
        assert!(d.claim(3));
        let before = now_ms();
        d.release(3);
        let asked = d.take_feeder_request().expect("a pass asked for");
        assert!(asked >= before + RELEASED_LOOK_AGAIN_MS, "{asked} {before}");
        assert!(d.claim(3), "released");
    }

    #[test]
    fn the_lease_keeper_hears_when_work_comes_into_hand_after_none() {
        let (d, _rx) = Dispatcher::new(4);
        let started = d.work_started();
        assert!(d.nothing_in_flight());
        assert!(d.claim(1));
        assert!(started.try_recv().is_ok(), "first message in hand");
        assert!(d.claim(2));
        assert!(started.try_recv().is_err(), "not while work was in hand");
        d.finish(1);
        d.finish(2);
        assert!(d.nothing_in_flight());
        assert!(!d.claim(2), "recently finished: not claimed");
        assert!(started.try_recv().is_err(), "nothing came into hand");
        assert!(d.claim(4));
        assert!(started.try_recv().is_ok(), "in hand again after none");
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
