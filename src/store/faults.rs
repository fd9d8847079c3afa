//! A write store that fails chosen commits, so tests can walk the fault paths (a disk that
//! fills up now and then, a disk that is full until space is freed) without root, a tmpfs or
//! a real broken disk. It wraps any [`WriteStore`]; a failed commit never reaches the wrapped
//! store, so nothing of that batch is kept, exactly as the trait promises for a real failure.
//!
//! It is part of the library (not only of its unit tests) because integration tests start the
//! real service with it (`Service::builder(..).faults(..)`); nothing in the configuration or
//! the command line can switch it on.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CounterDelta, OpOutcome, StoreError, StoreResult, WriteOp, WriteStore};

/// Which error an injected failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultKind {
    /// What SQLite reports when the disk is full (the usual bad day).
    #[default]
    DiskFull,
    Io,
    Busy,
    Corrupt,
}

impl FaultKind {
    fn error(self) -> StoreError {
        let detail = "injected fault".to_string();
        match self {
            FaultKind::DiskFull => {
                StoreError::DiskFull(format!("{detail}: database or disk is full"))
            }
            FaultKind::Io => StoreError::Io(format!("{detail}: disk I/O error")),
            FaultKind::Busy => StoreError::Busy(format!("{detail}: database is locked")),
            FaultKind::Corrupt => {
                StoreError::Corrupt(format!("{detail}: database disk image is malformed"))
            }
        }
    }
}

#[derive(Debug, Default)]
struct Plan {
    /// Every `every`-th commit fails (0: off); counted over all commits since it was set.
    every: u64,
    since_set: u64,
    /// The next `next` commits fail.
    next: u64,
    /// Every commit fails while this is on.
    all: bool,
    kind: FaultKind,
}

#[derive(Debug, Default)]
struct Shared {
    plan: Mutex<Plan>,
    commits: AtomicU64,
    failed: AtomicU64,
}

/// The switchboard of a [`FaultyStore`]: clone it, hand one to the store and keep the other
/// to switch faults on and off while the service runs. A fresh one fails nothing.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Fails every `n`-th commit from now on (the `n`-th, `2n`-th, …); 0 stops it.
    pub fn fail_every(&self, n: u64) {
        self.with_plan(|p| {
            p.every = n;
            p.since_set = 0;
        });
    }

    /// Fails the next `k` commits.
    pub fn fail_next(&self, k: u64) {
        self.with_plan(|p| p.next = k);
    }

    /// Fails every commit while `on`.
    pub fn fail_all(&self, on: bool) {
        self.with_plan(|p| p.all = on);
    }

    /// Stops every kind of failure.
    pub fn clear(&self) {
        self.with_plan(|p| {
            p.every = 0;
            p.next = 0;
            p.all = false;
        });
    }

    /// Which error failures return (disk full unless told otherwise).
    pub fn kind(&self, kind: FaultKind) {
        self.with_plan(|p| p.kind = kind);
    }

    /// Commits asked of the store so far (failed ones included).
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(SeqCst)
    }

    /// Commits failed on purpose so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(SeqCst)
    }

    fn with_plan(&self, f: impl FnOnce(&mut Plan)) {
        let mut plan = self.shared.plan.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut plan);
    }

    /// Decides the fate of one commit: the error to return, or `None` to let it through.
    fn next_commit(&self) -> Option<StoreError> {
        self.shared.commits.fetch_add(1, SeqCst);
        let mut plan = self.shared.plan.lock().unwrap_or_else(|p| p.into_inner());
        plan.since_set += 1;
        let fail = if plan.all {
            true
        } else if plan.next > 0 {
            plan.next -= 1;
            true
        } else {
            plan.every > 0 && plan.since_set.is_multiple_of(plan.every)
        };
        if !fail {
            return None;
        }
        self.shared.failed.fetch_add(1, SeqCst);
        Some(plan.kind.error())
    }
}

/// A [`WriteStore`] whose commits fail as its [`Faults`] say. Recovery, housekeeping and
/// checkpoints pass straight through: only commits (what a 2xx depends on) fail.
pub struct FaultyStore<S> {
    inner: S,
    faults: Faults,
}

impl<S: WriteStore> FaultyStore<S> {
    pub fn new(inner: S, faults: Faults) -> Self {
        FaultyStore { inner, faults }
    }
}

impl<S: WriteStore> WriteStore for FaultyStore<S> {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        match self.faults.next_commit() {
            Some(e) => Err(e),
            None => self.inner.commit_batch(ops, now_ms, queue_size_peak),
        }
    }

    fn recover_in_flight(&mut self, owner: &str, now_ms: i64) -> StoreResult<u64> {
        self.inner.recover_in_flight(owner, now_ms)
    }

    fn maintain(&mut self, idle_for: Duration) -> StoreResult<Option<Duration>> {
        self.inner.maintain(idle_for)
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        self.inner.checkpoint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewMessage, ReadStore};

    fn append(n: u8) -> WriteOp {
        WriteOp::Append(NewMessage {
            received_at_ms: 1,
            path: "/p".into(),
            remote_addr: None,
            headers_json: "{}".into(),
            payload: vec![n],
            idem_key: None,
        })
    }

    fn opened() -> (tempfile::TempDir, Box<dyn WriteStore>, Arc<dyn ReadStore>) {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::StorageSettings {
            path: dir.path().join("f.db"),
            ..Default::default()
        };
        let (w, r) = crate::store::open(&settings).unwrap();
        (dir, w, r)
    }

    #[test]
    fn every_nth_commit_fails_and_keeps_nothing_of_its_batch() {
        let (_dir, inner, reader) = opened();
        let faults = Faults::new();
        let mut store = FaultyStore::new(inner, faults.clone());
        faults.fail_every(3);
        let mut kept = 0;
        for i in 0..9u8 {
            match store.commit_batch(&[append(i), append(i + 100)], 0, 0) {
                Ok(_) => kept += 2,
                Err(e) => {
                    assert!(matches!(e, StoreError::DiskFull(_)), "{e:?}");
                    assert_eq!(i % 3, 2, "commit {} failed", i + 1);
                }
            }
        }
        assert_eq!((faults.commits(), faults.failed()), (9, 3));
        assert_eq!(reader.counters().unwrap().received, kept);
        assert_eq!(kept, 12);
    }

    #[test]
    fn next_k_and_all_fail_until_cleared() {
        let (_dir, inner, reader) = opened();
        let faults = Faults::new();
        let mut store = FaultyStore::new(inner, faults.clone());
        faults.fail_next(2);
        faults.kind(FaultKind::Io);
        assert!(matches!(
            store.commit_batch(&[append(1)], 0, 0),
            Err(StoreError::Io(_))
        ));
        assert!(store.commit_batch(&[append(2)], 0, 0).is_err());
        assert!(store.commit_batch(&[append(3)], 0, 0).is_ok());
        faults.fail_all(true);
        for i in 0..5 {
            assert!(store.commit_batch(&[append(i)], 0, 0).is_err());
        }
        faults.clear();
        assert!(store.commit_batch(&[append(9)], 0, 0).is_ok());
        assert_eq!(reader.counters().unwrap().received, 2);
        assert_eq!(faults.failed(), 7);
    }
}
