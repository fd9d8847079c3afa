//! Leases, for a database shared by several nodes. The in-memory dispatcher of one node cannot
//! stop another node from taking the same message, so there the claim in the database is the
//! arbiter: a worker waits for its claim to commit before it runs the attempt, and a claim that
//! finds the message gone, finished or taken answers `NotApplicable` and the worker skips it.
//! A claim leases the message to this node; the [`LeaseKeeper`] renews the leases of the
//! attempts running here and re-queues messages whose lease ran out (a node that died).
//! SQLite, with one node, keeps its fast path: claims sent without waiting, folded into the
//! attempt's end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::Dispatcher;
use crate::store::{WriteOp, WriterHandle};

/// The messages whose attempts run on this node now (claimed, outcome not yet sent).
#[derive(Clone, Default)]
pub struct Running(Arc<Mutex<HashSet<i64>>>);

impl Running {
    pub fn insert(&self, id: i64) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(id);
        }
    }

    pub fn remove(&self, id: i64) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(&id);
        }
    }

    pub fn ids(&self) -> Vec<i64> {
        self.0
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// What workers need when the database decides who runs a message.
#[derive(Clone)]
pub struct Arbiter {
    /// A skipped message leaves this node's in-flight set (another node has it, or the feeder
    /// hands it over again once it is queued).
    pub dispatcher: Dispatcher,
    pub running: Running,
    /// How long a worker waits for its claim to commit.
    pub claim_timeout: Duration,
}

/// How often expired leases are looked for.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

pub struct LeaseKeeper {
    thread: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Renews running attempts' leases every third of `lease` (so two renewals may be lost
    /// before one runs out) and re-queues expired leases every second, until `stop`
    /// disconnects.
    pub fn start(
        writer: WriterHandle,
        running: Running,
        lease: Duration,
        stop: Receiver<()>,
    ) -> LeaseKeeper {
        let renew_every = (lease / 3).max(Duration::from_millis(100));
        let tick = renew_every.min(EXPIRY_CHECK);
        let thread = std::thread::Builder::new()
            .name("leases".into())
            .spawn(move || {
                let mut last_renew = Instant::now();
                let mut last_expiry = Instant::now();
                loop {
                    match stop.recv_timeout(tick) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    if last_renew.elapsed() >= renew_every {
                        last_renew = Instant::now();
                        let ids = running.ids();
                        if !ids.is_empty() {
                            writer.send(WriteOp::RenewLeases { ids });
                        }
                    }
                    if last_expiry.elapsed() >= EXPIRY_CHECK {
                        last_expiry = Instant::now();
                        writer.send(WriteOp::RequeueExpired);
                    }
                }
            })
            .expect("spawn leases thread");
        LeaseKeeper { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}
