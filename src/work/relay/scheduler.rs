//! The relay's one scheduling thread. It knows every target with owed deliveries, when each
//! may next be sent to (its rate-limit bucket, a global pause, its head's backoff), and how
//! many of its requests are in flight; it sleeps until the earliest of those times or until
//! a signal arrives (a commit, a worker's report, the stop), never polling. With other nodes
//! on the database it also looks for owed targets once a second (their leftovers).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, RecvTimeoutError, Sender};

use super::pacing::Pace;
use super::worker::{Report, Reported, Work};
use super::Signal;
use crate::base::lifecycle::Stop;
use crate::base::mask::mask_target;
use crate::base::time::rfc3339;
use crate::store::{dead_targets, owed_targets, ReadStore, TargetKind};
use crate::work::stats::LiveStats;

/// How soon a target is tried again after the store failed, or another node held it.
const AGAIN: Duration = Duration::from_secs(1);
/// With other nodes: how often the owed targets are read from the database.
const SHARED_POLL: Duration = Duration::from_secs(1);

struct Target {
    kind: TargetKind,
    label: String,
    in_flight: u32,
    /// When it should next be handed over; `None` while nothing is known to be owed.
    ready_at: Option<Instant>,
    /// Its own pause (an exhausted bucket without a name, a 429).
    paused_until: Option<Instant>,
    bucket: Option<String>,
}

pub struct Scheduler {
    concurrency: u32,
    reader: Arc<dyn ReadStore>,
    jobs: Sender<Work>,
    live: Arc<LiveStats>,
    shared: bool,
    targets: HashMap<String, Target>,
    buckets: HashMap<String, Instant>,
    global_until: Option<Instant>,
    /// Targets dead until an operator retries: a new delivery to one is a dead letter from
    /// its commit, so it is not handed over (a rescan, which an operator's retry causes, reads
    /// them again).
    dead: HashSet<String>,
}

impl Scheduler {
    pub fn new(
        concurrency: u32,
        reader: Arc<dyn ReadStore>,
        jobs: Sender<Work>,
        live: Arc<LiveStats>,
        shared: bool,
    ) -> Scheduler {
        Scheduler {
            concurrency,
            reader,
            jobs,
            live,
            shared,
            targets: HashMap::new(),
            buckets: HashMap::new(),
            global_until: None,
            dead: HashSet::new(),
        }
    }

    pub fn run(mut self, inbox: Receiver<Signal>, stop: Stop) {
        self.rescan();
        let mut next_poll = Instant::now() + SHARED_POLL;
        loop {
            let now = Instant::now();
            let mut wake_at = self.next_due(now);
            if self.shared {
                wake_at = Some(wake_at.map_or(next_poll, |w| w.min(next_poll)));
            }
            let signal = match wake_at {
                Some(at) => {
                    let wait = at.saturating_duration_since(now);
                    select! {
                        recv(inbox) -> s => s.map_err(|_| RecvTimeoutError::Disconnected),
                        recv(stop.receiver()) -> _ => return,
                        default(wait) => Err(RecvTimeoutError::Timeout),
                    }
                }
                None => select! {
                    recv(inbox) -> s => s.map_err(|_| RecvTimeoutError::Disconnected),
                    recv(stop.receiver()) -> _ => return,
                },
            };
            match signal {
                Ok(s) => self.hear(s),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            while let Ok(s) = inbox.try_recv() {
                self.hear(s);
            }
            if self.shared && Instant::now() >= next_poll {
                self.rescan();
                next_poll = Instant::now() + SHARED_POLL;
            }
            self.hand_over(Instant::now());
        }
    }

    /// Reads the dead targets, and the targets with owed deliveries: each is due now (one
    /// that is dead too has deliveries another node committed as it died: its take ends them).
    /// With other nodes, the owed figures are set from the same read.
    fn rescan(&mut self) {
        match dead_targets(self.reader.as_ref()) {
            Ok(dead) => {
                let labels: Vec<String> = dead.iter().map(|t| mask_target(t)).collect();
                self.live.relay.set_dead(&labels);
                self.dead = dead.into_iter().collect();
            }
            Err(e) => log::warn!("relay: cannot read the dead targets: {e}"),
        }
        match owed_targets(self.reader.as_ref()) {
            Ok(list) => {
                if self.shared {
                    // Other nodes' commits move the owed deliveries too, and this node's
                    // figures hear only its own: with them, the rows say how many are owed.
                    let mut by_label = std::collections::BTreeMap::<String, i64>::new();
                    for t in &list {
                        *by_label.entry(t.label.clone()).or_default() += t.owed;
                    }
                    self.live.relay.recount_owed(&by_label);
                }
                for t in list {
                    self.owed(t.target, t.kind);
                }
            }
            Err(e) => log::warn!("relay: cannot read the owed deliveries: {e}"),
        }
    }

    fn owed(&mut self, target: String, kind: TargetKind) {
        let t = self.targets.entry(target).or_insert_with_key(|k| Target {
            kind,
            label: mask_target(k),
            in_flight: 0,
            ready_at: None,
            paused_until: None,
            bucket: None,
        });
        if t.ready_at.is_none() {
            t.ready_at = Some(Instant::now());
        }
    }

    fn hear(&mut self, signal: Signal) {
        match signal {
            Signal::Owed { target, .. } if self.dead.contains(&target) => {}
            Signal::Owed { target, kind } => self.owed(target, kind),
            Signal::Rescan => self.rescan(),
            Signal::Report(r) => self.report(r),
        }
    }

    fn report(&mut self, r: Report) {
        let now = Instant::now();
        let Some(t) = self.targets.get_mut(&r.target) else {
            return;
        };
        if matches!(r.what, Reported::Took) {
            // Its request is under way: another slot of the target may take the next one.
            t.ready_at = Some(now);
            return;
        }
        t.in_flight = t.in_flight.saturating_sub(1);
        let label = t.label.clone();
        match r.what {
            Reported::Took => {}
            Reported::Sent { pace, status } => {
                self.dead.remove(&r.target);
                self.pace(&r.target, &pace, now);
                if let Some(t) = self.targets.get_mut(&r.target) {
                    t.ready_at = Some(now);
                }
                let paused = self.paused_until(&r.target);
                self.live.relay.update_target(&label, |f| {
                    f.last_status = status;
                    f.dead = false;
                    f.paused_until = paused.map(instant_text);
                });
            }
            // Left as it is: a commit heard since the hand-over already made it ready again.
            Reported::Idle => {}
            Reported::DueAt(at_ms) => {
                let wait =
                    Duration::from_millis((at_ms - crate::base::time::now_ms()).max(0) as u64);
                t.ready_at = Some(now + wait);
                self.live
                    .relay
                    .update_target(&label, |f| f.paused_until = Some(instant_text(now + wait)));
            }
            Reported::HeldElsewhere | Reported::Failed => t.ready_at = Some(now + AGAIN),
            Reported::Dead => {
                t.ready_at = None;
                self.dead.insert(r.target.clone());
                self.live.relay.update_target(&label, |f| f.dead = true);
            }
        }
    }

    /// Applies what an answer said about pacing.
    fn pace(&mut self, target: &str, pace: &Pace, now: Instant) {
        if let Some(g) = pace.global {
            let until = now + g;
            self.global_until = Some(self.global_until.map_or(until, |u| u.max(until)));
        }
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        if let Some(b) = &pace.bucket {
            t.bucket = Some(b.clone());
        }
        match (pace.wait, &t.bucket) {
            (Some(w), Some(b)) => {
                self.buckets.insert(b.clone(), now + w);
            }
            (Some(w), None) => t.paused_until = Some(now + w),
            (None, _) => {}
        }
    }

    /// Until when `target` may not be sent to: its own pause, its bucket's, the global one.
    fn paused_until(&self, target: &str) -> Option<Instant> {
        let t = self.targets.get(target)?;
        let bucket = t.bucket.as_ref().and_then(|b| self.buckets.get(b)).copied();
        let global = (t.kind == TargetKind::Discord)
            .then_some(self.global_until)
            .flatten();
        [t.paused_until, bucket, global].into_iter().flatten().max()
    }

    /// When the next target may be handed over: its ready time, pushed past any pause.
    fn next_due(&self, now: Instant) -> Option<Instant> {
        self.targets
            .iter()
            .filter(|(_, t)| t.in_flight < self.concurrency)
            .filter_map(|(k, t)| {
                let ready = t.ready_at?;
                Some(match self.paused_until(k) {
                    Some(p) if p > ready => p,
                    _ => ready,
                })
            })
            .min()
            .map(|at| at.max(now))
    }

    fn hand_over(&mut self, now: Instant) {
        let due: Vec<String> = self
            .targets
            .iter()
            .filter(|(_, t)| t.in_flight < self.concurrency)
            .filter(|(_, t)| t.ready_at.is_some_and(|r| r <= now))
            .map(|(k, _)| k.clone())
            .filter(|k| self.paused_until(k).is_none_or(|p| p <= now))
            .collect();
        for target in due {
            let Some(t) = self.targets.get_mut(&target) else {
                continue;
            };
            t.in_flight += 1;
            // One take per hand-over; the worker's report (or a new commit) readies it again.
            t.ready_at = None;
            if self.jobs.send(Work { target }).is_err() {
                return;
            }
        }
        // Forget idle targets that nothing is waiting for (keeps the map to live targets).
        self.targets
            .retain(|_, t| t.ready_at.is_some() || t.in_flight > 0 || t.bucket.is_some());
    }
}

fn instant_text(at: Instant) -> String {
    let ms = at.saturating_duration_since(Instant::now()).as_millis() as i64;
    rfc3339(crate::base::time::now_ms() + ms)
}
