//! A write store that fails where a test says, so tests can walk the fault paths (a disk that
//! fills up now and then, a disk full until space is freed, a connection lost after a durable
//! `COMMIT`, a process that stops half-way through a transaction) without root, a tmpfs or a
//! real broken disk. It wraps a backend's transaction interface ([`SqlBackend`]), so the ops
//! really run against the database and fail exactly where a real failure would:
//!
//! - before `COMMIT`: the batch ran, then rolls back; nothing of it is kept;
//! - after `COMMIT` ([`FailAt::AfterCommit`]): the batch is durable but the answer is an
//!   error, as when PostgreSQL commits and the connection drops before it says so;
//! - at a chosen statement ([`Faults::stop_at_statement`]): that statement fails and so does
//!   every later one, as if the process had died there, until [`Faults::clear`].
//!
//! It is part of the library (not only of its unit tests) because integration tests start the
//! real service with it (`Service::builder(..).faults(..)`); nothing in the configuration or
//! the command line can switch it on.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sql::{Announce, Row, Rules, SqlBackend, SqlTx, Value};
use crate::store::error::{StoreError, StoreResult};

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

/// Where a failing commit fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailAt {
    /// The batch runs, then rolls back instead of committing: nothing is kept.
    #[default]
    BeforeCommit,
    /// The batch commits (durably), then the answer is lost: the caller sees an error.
    AfterCommit,
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
    at: FailAt,
    /// Statements still allowed before the stop; `None`: no stop planned.
    stop_in: Option<u64>,
    /// The stop was reached: everything fails until cleared.
    stopped: bool,
}

#[derive(Debug, Default)]
struct Shared {
    plan: Mutex<Plan>,
    commits: AtomicU64,
    failed: AtomicU64,
}

/// The switchboard of a `FaultyBackend`: clone it, hand one to the store and keep the other
/// to switch faults on and off while the service runs. A fresh one fails nothing.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    shared: Arc<Shared>,
}

/// What becomes of one transaction.
enum Fate {
    Pass,
    Fail(StoreError, FailAt),
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

    /// Where failing commits fail (before `COMMIT` unless told otherwise).
    pub fn fail_at(&self, at: FailAt) {
        self.with_plan(|p| p.at = at);
    }

    /// The `n`-th statement from now (1: the next) fails, and every statement and commit
    /// after it, as if the process had stopped there; [`clear`](Faults::clear) lets them
    /// through again.
    pub fn stop_at_statement(&self, n: u64) {
        self.with_plan(|p| {
            p.stop_in = Some(n.saturating_sub(1));
            p.stopped = false;
        });
    }

    /// Stops every kind of failure.
    pub fn clear(&self) {
        self.with_plan(|p| {
            p.every = 0;
            p.next = 0;
            p.all = false;
            p.stop_in = None;
            p.stopped = false;
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

    /// Commits failed on purpose so far (a stop counts once per transaction it fails).
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(SeqCst)
    }

    fn with_plan<T>(&self, f: impl FnOnce(&mut Plan) -> T) -> T {
        let mut plan = self.shared.plan.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut plan)
    }

    /// Decides the fate of one commit.
    fn next_commit(&self) -> Fate {
        self.shared.commits.fetch_add(1, SeqCst);
        self.with_plan(|plan| {
            plan.since_set += 1;
            let fail = if plan.all {
                true
            } else if plan.next > 0 {
                plan.next -= 1;
                true
            } else {
                plan.every > 0 && plan.since_set.is_multiple_of(plan.every)
            };
            if fail {
                Fate::Fail(plan.kind.error(), plan.at)
            } else {
                Fate::Pass
            }
        })
    }

    /// Whether the process has "stopped": every statement and commit then fails.
    fn stopped(&self) -> Option<StoreError> {
        self.with_plan(|p| p.stopped.then(|| stop_error(p.kind)))
    }

    /// Counts one statement against a planned stop.
    fn statement(&self) -> StoreResult<()> {
        self.with_plan(|p| {
            if p.stopped {
                return Err(stop_error(p.kind));
            }
            match p.stop_in {
                Some(0) => {
                    p.stopped = true;
                    p.stop_in = None;
                    Err(stop_error(p.kind))
                }
                Some(n) => {
                    p.stop_in = Some(n - 1);
                    Ok(())
                }
                None => Ok(()),
            }
        })
    }
}

fn stop_error(kind: FaultKind) -> StoreError {
    match kind.error() {
        StoreError::DiskFull(m) => StoreError::DiskFull(format!("{m} (stopped)")),
        other => other,
    }
}

/// A backend whose transactions fail as its [`Faults`] say. Housekeeping and the clean-stop
/// call pass straight through: only transactions (what a 2xx depends on) fail.
pub struct FaultyBackend<B> {
    inner: B,
    faults: Faults,
}

impl<B: SqlBackend> FaultyBackend<B> {
    pub fn new(inner: B, faults: Faults) -> Self {
        FaultyBackend { inner, faults }
    }
}

impl<B: SqlBackend> SqlBackend for FaultyBackend<B> {
    fn transaction<R>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let (before_commit, after_commit) = match self.faults.next_commit() {
            Fate::Pass => (None, None),
            Fate::Fail(e, FailAt::BeforeCommit) => (Some(e), None),
            Fate::Fail(e, FailAt::AfterCommit) => (None, Some(e)),
        };
        if let Some(e) = self.faults.stopped() {
            self.faults.shared.failed.fetch_add(1, SeqCst);
            return Err(e);
        }
        let faults = self.faults.clone();
        let result = self.inner.transaction(|tx: &mut dyn SqlTx| {
            let mut tx = FaultyTx { inner: tx, faults };
            let result = work(&mut tx)?;
            // The last point before COMMIT, for a stop planned past the batch's statements.
            tx.faults.statement()?;
            match before_commit {
                Some(e) => Err(e),
                None => Ok(result),
            }
        });
        match (result, after_commit) {
            (Ok(_), Some(e)) | (Err(e), _) => {
                self.faults.shared.failed.fetch_add(1, SeqCst);
                Err(e)
            }
            (Ok(result), None) => Ok(result),
        }
    }

    fn maintain(&mut self, idle_for: Duration) -> StoreResult<Option<Duration>> {
        self.inner.maintain(idle_for)
    }

    fn close(&mut self) -> StoreResult<()> {
        self.inner.close()
    }
}

/// One transaction of a [`FaultyBackend`]: every statement counts towards a planned stop.
struct FaultyTx<'a> {
    inner: &'a mut dyn SqlTx,
    faults: Faults,
}

impl SqlTx for FaultyTx<'_> {
    fn rules(&self) -> &Rules {
        self.inner.rules()
    }

    fn node(&self) -> &str {
        self.inner.node()
    }

    fn lease_clock(&mut self, batch_now_ms: i64) -> StoreResult<i64> {
        self.inner.lease_clock(batch_now_ms)
    }

    fn execute(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64> {
        self.faults.statement()?;
        self.inner.execute(sql, params)
    }

    fn insert(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<i64>> {
        self.faults.statement()?;
        self.inner.insert(sql, params)
    }

    fn query(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Row>> {
        self.faults.statement()?;
        self.inner.query(sql, params)
    }

    fn query_row(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<Row>> {
        self.faults.statement()?;
        self.inner.query_row(sql, params)
    }

    fn add_counters(&mut self, rows: &[(&'static str, i64)]) -> StoreResult<()> {
        self.faults.statement()?;
        self.inner.add_counters(rows)
    }

    fn raise_counter(&mut self, name: &'static str, value: i64) -> StoreResult<()> {
        self.faults.statement()?;
        self.inner.raise_counter(name, value)
    }

    fn announce(&mut self, what: Announce, id: i64) {
        self.inner.announce(what, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::{NewMessage, WriteOp};
    use crate::store::seam::{ReadStore, WriteStore};
    use crate::store::sql_store::SqlStore;
    use crate::store::sqlite::{SqliteBackend, SqliteReader};

    fn append(n: u8) -> WriteOp {
        WriteOp::Append(NewMessage {
            source: "orders".into(),
            received_at_ms: 1,
            path: "/p".into(),
            remote_addr: None,
            headers_json: "{}".into(),
            payload: vec![n],
            idem_key: None,
            deliveries: Vec::new(),
        })
    }

    type Faulty = SqlStore<FaultyBackend<SqliteBackend>>;

    fn opened(faults: &Faults) -> (tempfile::TempDir, Faulty, SqliteReader) {
        let dir = tempfile::tempdir().unwrap();
        let (w, r) = crate::store::sqlite::open(&dir.path().join("f.db"), 1).unwrap();
        let store = SqlStore::new(FaultyBackend::new(w.into_backend(), faults.clone()));
        (dir, store, r)
    }

    #[test]
    fn every_nth_commit_fails_and_keeps_nothing_of_its_batch() {
        let faults = Faults::new();
        let (_dir, mut store, reader) = opened(&faults);
        faults.fail_every(3);
        let mut kept = 0;
        for i in 0..9u8 {
            match store.commit_batch(&[append(i), append(i + 100)], 0) {
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
        let faults = Faults::new();
        let (_dir, mut store, reader) = opened(&faults);
        faults.fail_next(2);
        faults.kind(FaultKind::Io);
        assert!(matches!(
            store.commit_batch(&[append(1)], 0),
            Err(StoreError::Io(_))
        ));
        assert!(store.commit_batch(&[append(2)], 0).is_err());
        assert!(store.commit_batch(&[append(3)], 0).is_ok());
        faults.fail_all(true);
        for i in 0..5 {
            assert!(store.commit_batch(&[append(i)], 0).is_err());
        }
        faults.clear();
        assert!(store.commit_batch(&[append(9)], 0).is_ok());
        assert_eq!(reader.counters().unwrap().received, 2);
        assert_eq!(faults.failed(), 7);
    }
}
