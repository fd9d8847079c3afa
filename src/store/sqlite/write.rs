//! The write connection and the SQLite side of the transaction interface. Only the writer
//! thread holds it, so there is never lock contention between writers and `BEGIN IMMEDIATE`
//! never waits on another hookvault thread. What the ops mean is `store/state_machine.rs`;
//! this file only runs statements, and copies the WAL back (checkpoints) between commits.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ToSql, Transaction, TransactionBehavior};

use super::checkpointer::Checkpointer;
use super::sql_err;
use crate::store::sql::{Announce, Cell, Row, Rules, SqlBackend, SqlTx, Value};
use crate::store::{SqlStore, StoreResult};

/// The write side on SQLite: the state machine over this connection.
pub type SqliteWriter = SqlStore<SqliteBackend>;

/// One node owns the file, so an outcome may land on its message still `queued` (its claim
/// folded into the same commit, or its lease just run out), and no row needs locking.
const RULES: Rules = Rules {
    outcome_on_queued: true,
    outcome_needs_lease_holder: false,
    stores_gauges: false,
    attempt_row: "SELECT state, attempts, path, lease_owner FROM messages WHERE id = ?1",
    claim: "UPDATE messages SET state = 'processing', attempts = ?2, lease_owner = ?3, \
            lease_until = ?4 WHERE id = ?1 AND state = 'queued' AND attempts = ?2 - 1",
    processing_rows: "SELECT id, lease_owner, lease_until FROM messages WHERE state = 'processing'",
    // Named, not left to the planner: without statistics it prefers the (state, id) index and
    // sorts every processed row by finish time.
    purge_candidates:
        "SELECT id FROM messages INDEXED BY messages_processed_finished \
                       WHERE state = 'processed' AND finished_at < ?1 ORDER BY finished_at LIMIT ?2",
    sweep_lock: None,
    recover: "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL \
              WHERE state = 'processing' AND (lease_owner IS NULL OR lease_owner = ?1 \
              OR lease_until IS NULL OR lease_until < ?2)",
};

/// Statements the state machine and the backend prepare; the connection keeps them all.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteBackend {
    conn: Connection,
    /// Held as long as this writer lives (see `store::instance_lock`).
    pub(super) instance_lock: Option<crate::store::InstanceLock>,
    /// Commits that changed rows since the last checkpoint; a commit that changed nothing
    /// (an idle lease tick) wrote no page and needs no checkpoint.
    commits_since_checkpoint: u32,
    rows_since_checkpoint: u64,
    /// Runs the PASSIVE checkpoints beside the commits; started at the first one due (a
    /// command that never commits has no such thread), stopped before the final one.
    checkpointer: Option<Checkpointer>,
}

impl SqliteBackend {
    pub(super) fn new(conn: Connection) -> StoreResult<Self> {
        // Bound the WAL file after checkpoints so a burst does not leave a huge file behind.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sql_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteBackend {
            conn,
            instance_lock: None,
            commits_since_checkpoint: 0,
            rows_since_checkpoint: 0,
            checkpointer: None,
        })
    }

    /// The write connection itself, for `check --repair`, which writes outside the writer's ops.
    pub(super) fn into_connection(mut self) -> Connection {
        self.checkpointer = None;
        self.conn
    }

    /// Copies the WAL back on the writer's own connection, between commits: nothing is
    /// appended meanwhile, so it copies everything and the next commit starts the WAL over.
    /// `false` when another checkpoint (the checkpointer's) was running and this one did not.
    fn checkpoint_here(&mut self) -> StoreResult<bool> {
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
            .map_err(sql_err)?;
        Ok(busy == 0)
    }
}

/// When to copy the WAL back into the database file. A checkpoint writes each page changed
/// since the last one once, however often it changed, so checkpointing seldom writes far less
/// (SD cards wear by the byte): after a second with no commit, or once enough has piled up
/// that the WAL should not grow further (rows changed are a cautious stand-in for pages: a
/// batch's rows share pages). The checkpoint runs on its own thread and connection
/// ([`Checkpointer`]), beside the commits, so acks that arrive meanwhile do not wait for it.
const CHECKPOINT_AFTER_IDLE: Duration = Duration::from_secs(1);
const CHECKPOINT_AFTER_COMMITS: u32 = 1000;
const CHECKPOINT_AFTER_ROWS: u64 = 16 * 1024;

/// A checkpoint beside the writer never finds the WAL fully copied when a commit starts, so
/// under sustained traffic the WAL would only grow (see [`Checkpointer::wal_frames`]). Past
/// this many frames the writer runs the due checkpoint itself, which has only what the
/// checkpointer has not yet copied left to do.
const WAL_FRAMES_CHECKPOINT_HERE: u64 = 16 * 1024;
/// How soon the writer tries its own checkpoint again when the checkpointer's was running.
const CHECKPOINT_BUSY_RETRY: Duration = Duration::from_millis(100);

impl SqlBackend for SqliteBackend {
    fn transaction<R>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let changes_before = self.conn.total_changes();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let mut tx = SqliteTx { tx };
        let result = work(&mut tx)?;
        let changed = tx.tx.total_changes().saturating_sub(changes_before);
        tx.tx.commit().map_err(sql_err)?;
        if changed > 0 {
            self.commits_since_checkpoint += 1;
            self.rows_since_checkpoint += changed;
        }
        Ok(result)
    }

    /// Checkpoints when due; then nothing is due until the next commit (`None`), or, with
    /// commits not yet copied back, when the writer will have been idle for
    /// [`CHECKPOINT_AFTER_IDLE`].
    fn maintain(&mut self, idle_for: Duration) -> StoreResult<Option<Duration>> {
        if self.commits_since_checkpoint == 0 {
            return Ok(None);
        }
        if idle_for < CHECKPOINT_AFTER_IDLE
            && self.commits_since_checkpoint < CHECKPOINT_AFTER_COMMITS
            && self.rows_since_checkpoint < CHECKPOINT_AFTER_ROWS
        {
            return Ok(Some(CHECKPOINT_AFTER_IDLE.saturating_sub(idle_for)));
        }
        if self.checkpointer.is_none() {
            // An in-memory database has no path and no second connection to it.
            let path = self
                .conn
                .path()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from);
            if let Some(path) = path {
                self.checkpointer = Some(Checkpointer::start(&path)?);
            }
        }
        match &self.checkpointer {
            Some(c) if c.wal_frames() < WAL_FRAMES_CHECKPOINT_HERE => c.request(),
            _ => {
                if !self.checkpoint_here()? {
                    // The checkpointer is still at it: try again shortly.
                    return Ok(Some(CHECKPOINT_BUSY_RETRY));
                }
                if let Some(c) = &self.checkpointer {
                    // Copied to the end: the next commit starts the WAL over.
                    c.set_wal_frames(0);
                }
            }
        }
        self.commits_since_checkpoint = 0;
        self.rows_since_checkpoint = 0;
        Ok(None)
    }

    /// At a clean stop the WAL is copied back into the database file and truncated, so the
    /// file alone is the whole database (a copy, a backup tool, the next start read it).
    fn close(&mut self) -> StoreResult<()> {
        // The truncating checkpoint needs no other checkpoint beside it.
        self.checkpointer = None;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_err)?;
        self.commits_since_checkpoint = 0;
        self.rows_since_checkpoint = 0;
        Ok(())
    }
}

struct SqliteTx<'c> {
    tx: Transaction<'c>,
}

impl SqlTx for SqliteTx<'_> {
    fn rules(&self) -> &Rules {
        &RULES
    }

    /// One node: its counters carry no node name and it holds every lease.
    fn node(&self) -> &str {
        ""
    }

    fn lease_clock(&mut self, batch_now_ms: i64) -> StoreResult<i64> {
        Ok(batch_now_ms)
    }

    fn execute(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64> {
        let n = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
            .map_err(sql_err)?;
        Ok(n as u64)
    }

    /// A plain insert and `last_insert_rowid`, not `RETURNING id`: SQLite runs a RETURNING
    /// statement through a temporary result table, which costs the writer CPU per row.
    fn insert(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<i64>> {
        let inserted = self.execute(sql, params)?;
        Ok((inserted == 1).then(|| self.tx.last_insert_rowid()))
    }

    fn query(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(sql_err)?;
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..columns)
                    .map(|i| r.get_ref(i).map(cell))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(Row)
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?;
        Ok(rows)
    }

    fn query_row(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<Row>> {
        // Every single-row statement here selects by a key: at most one row comes back.
        Ok(self.query(sql, params)?.pop())
    }

    fn add_counters(&mut self, rows: &[(&'static str, i64)]) -> StoreResult<()> {
        let mut add = self
            .tx
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            )
            .map_err(sql_err)?;
        for (name, value) in rows {
            add.execute(params![name, value]).map_err(sql_err)?;
        }
        Ok(())
    }

    fn raise_counter(&mut self, name: &'static str, value: i64) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            )
            .and_then(|mut s| s.execute(params![name, value]))
            .map_err(sql_err)?;
        Ok(())
    }

    fn announce(&mut self, _what: Announce, _id: i64) {}
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn cell(v: ValueRef) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Int(f as i64),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        sqlite, CounterDelta, Effect, Lease, MessageState, NewMessage, OpOutcome, ReadStore,
        WriteOp, WriteStore,
    };

    fn message() -> WriteOp {
        WriteOp::Append(NewMessage {
            received_at_ms: 1,
            path: "/p".into(),
            remote_addr: None,
            headers_json: "{}".into(),
            payload: b"{}".to_vec(),
            idem_key: None,
        })
    }

    fn state(reader: &dyn ReadStore, id: i64) -> (MessageState, u32) {
        let m = reader.message(id).unwrap().unwrap();
        (m.summary.status, m.summary.attempts)
    }

    fn lease() -> Lease {
        Lease {
            owner: "node-a:1".into(),
            duration_ms: 30_000,
        }
    }

    fn claim(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Claim {
            id,
            attempt,
            lease: lease(),
        }
    }

    fn done(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Complete {
            id,
            attempt,
            effect: Effect::Nothing,
            processing_us: 1,
        }
    }

    fn retry(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Retry {
            id,
            attempt,
            error: "later".into(),
            next_attempt_at_ms: 0,
        }
    }

    fn lease_of(w: &SqliteWriter, id: i64) -> (Option<String>, Option<i64>) {
        w.backend
            .conn
            .query_row(
                "SELECT lease_owner, lease_until FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    #[test]
    fn claims_fold_into_the_op_that_ends_their_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message(), message()], 1)
            .unwrap();

        // 1: claim + complete in one batch. 2: claim, retry, claim, dead in one batch.
        // 3: claim alone, completed in the next batch (not folded).
        let ops = [
            claim(1, 1),
            claim(2, 1),
            claim(3, 1),
            done(1, 1),
            retry(2, 1),
            claim(2, 2),
            WriteOp::Dead {
                id: 2,
                attempt: 2,
                error: "bad".into(),
            },
        ];
        let (outcomes, delta) = w.commit_batch(&ops, 2).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Claimed);
        assert_eq!(outcomes[3], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 1), (MessageState::Processed, 1));
        assert_eq!(state(&r, 2), (MessageState::Dead, 2));
        assert_eq!(state(&r, 3), (MessageState::Processing, 1));
        assert_eq!(lease_of(&w, 3), (Some("node-a:1".into()), Some(30_002)));
        assert_eq!(
            (
                delta.queued,
                delta.processing,
                delta.processed,
                delta.dead,
                delta.retried
            ),
            (-3, 1, 1, 1, 1)
        );

        let (outcomes, _) = w.commit_batch(&[done(3, 1)], 3).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 3), (MessageState::Processed, 1));
        assert_eq!(lease_of(&w, 3), (None, None), "an outcome clears the lease");

        // A folded pair on a message that is not queued leaves it alone, and says so for both.
        let (outcomes, delta) = w.commit_batch(&[claim(1, 2), done(1, 2)], 4).unwrap();
        let na = OpOutcome::NotApplicable {
            state: Some(MessageState::Processed),
        };
        assert_eq!(outcomes, vec![na.clone(), na]);
        assert_eq!(delta, CounterDelta::default());
        let c = r.counters().unwrap();
        assert_eq!((c.received, c.processed, c.dead, c.retried), (3, 2, 1, 1));
    }

    /// An idle writer sleeps until an op arrives when `maintain` says nothing is due: only
    /// commits that changed rows make a checkpoint due, once the writer has been idle for
    /// [`CHECKPOINT_AFTER_IDLE`]; an idle lease tick (a commit that changed nothing) does not.
    #[test]
    fn maintain_says_when_a_checkpoint_is_next_due() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "fresh: nothing due"
        );
        w.commit_batch(&[message()], 1).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            Some(CHECKPOINT_AFTER_IDLE)
        );
        assert_eq!(
            w.maintain(Duration::from_millis(400)).unwrap(),
            Some(CHECKPOINT_AFTER_IDLE - Duration::from_millis(400))
        );
        assert_eq!(
            w.maintain(CHECKPOINT_AFTER_IDLE).unwrap(),
            None,
            "checkpointed"
        );
        let idle_tick = WriteOp::RenewLeases {
            lease: lease(),
            live: vec![],
        };
        w.commit_batch(&[idle_tick], 2).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "a commit that changed nothing needs no checkpoint"
        );
        w.commit_batch(&[WriteOp::QueueSizePeak { peak: 2 }], 3)
            .unwrap();
        assert!(
            w.maintain(Duration::ZERO).unwrap().is_some(),
            "a higher queue peak is a change"
        );
    }

    /// A due checkpoint is handed to the checkpointer thread, which copies the WAL back on its
    /// own connection; the writer's final checkpoint stops the thread and truncates the WAL.
    #[test]
    fn the_checkpointer_thread_copies_the_wal_back_and_stops_before_the_final_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let (mut w, _r) = sqlite::open(&db, 1).unwrap();
        w.commit_batch(&[message()], 1).unwrap();
        assert!(
            w.backend.checkpointer.is_none(),
            "no thread before a checkpoint is due"
        );
        assert_eq!(w.maintain(CHECKPOINT_AFTER_IDLE).unwrap(), None);
        let checkpointer = w.backend.checkpointer.as_ref().expect("started when due");
        let mut waited = 0;
        while checkpointer.wal_frames() == 0 {
            assert!(
                waited < 1000,
                "the checkpointer never reported a checkpoint"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        w.close().unwrap();
        assert!(
            w.backend.checkpointer.is_none(),
            "stopped before the truncating checkpoint"
        );
        let wal = std::fs::metadata(dir.path().join("t.db-wal")).unwrap();
        assert_eq!(wal.len(), 0, "the final checkpoint truncated the WAL");
    }

    /// The bug this guards against: a claim held back by a failed commit landed after its own
    /// outcome and left the message `processing` with nobody working on it.
    #[test]
    fn a_claim_landing_after_its_outcome_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message()], 1).unwrap();

        // Message 1: the outcome lands first (its claim was in a failed commit), then the claim.
        let (o, d) = w.commit_batch(&[done(1, 1)], 2).unwrap();
        assert_eq!(o[0], OpOutcome::Completed { order: None });
        assert_eq!((d.queued, d.processing, d.processed), (-1, 0, 1));
        let (o, d) = w.commit_batch(&[claim(1, 1)], 3).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        assert_eq!(d, CounterDelta::default());
        assert_eq!(state(&r, 1), (MessageState::Processed, 1));

        // Message 2: a retry lands before its claim; the late claim must not take the message
        // from the next attempt, whose claim (attempt 2) then applies.
        w.commit_batch(&[retry(2, 1)], 4).unwrap();
        assert_eq!(state(&r, 2), (MessageState::Queued, 1));
        let (o, _) = w.commit_batch(&[claim(2, 1)], 5).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        assert_eq!(state(&r, 2), (MessageState::Queued, 1));
        let (o, _) = w.commit_batch(&[claim(2, 2)], 6).unwrap();
        assert_eq!(o[0], OpOutcome::Claimed);
        assert_eq!(state(&r, 2), (MessageState::Processing, 2));
        // An outcome of an older attempt is ignored.
        let (o, _) = w.commit_batch(&[done(2, 1)], 7).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        w.commit_batch(&[done(2, 2)], 8).unwrap();
        assert_eq!(state(&r, 2), (MessageState::Processed, 2));
        let c = r.counters().unwrap();
        assert_eq!((c.processed, c.queued, c.processing), (2, 0, 0));
    }

    #[test]
    fn leases_are_renewed_for_live_work_and_expired_ones_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message(), message()], 1)
            .unwrap();
        // All three claimed at t=1000 with a 30 s lease (until 31_000).
        w.commit_batch(&[claim(1, 1), claim(2, 1), claim(3, 1)], 1_000)
            .unwrap();
        let renew = |live: Vec<i64>| WriteOp::RenewLeases {
            lease: lease(),
            live,
        };
        // Before expiry nothing is queued again, live or not; live ones are extended.
        let (o, _) = w.commit_batch(&[renew(vec![1])], 20_000).unwrap();
        assert_eq!(
            o[0],
            OpOutcome::LeasesRenewed {
                extended: 1,
                requeued: vec![]
            }
        );
        assert_eq!(lease_of(&w, 1).1, Some(50_000));
        // After expiry: 1 is live (renewed), 2 and 3 are nobody's and go back to queued.
        let (o, d) = w.commit_batch(&[renew(vec![1])], 40_000).unwrap();
        assert_eq!(
            o[0],
            OpOutcome::LeasesRenewed {
                extended: 1,
                requeued: vec![2, 3]
            }
        );
        assert_eq!((d.processing, d.queued, d.leases_expired), (-2, 2, 2));
        assert_eq!(state(&r, 2), (MessageState::Queued, 1), "attempts kept");
        assert_eq!(lease_of(&w, 2), (None, None));
        assert_eq!(r.expired_leases(40_000).unwrap(), 0);
        assert_eq!(
            r.expired_leases(80_000).unwrap(),
            1,
            "1's lease ends at 70 s"
        );
        // A late outcome of 2's attempt still counts (the attempt did finish).
        let (o, _) = w.commit_batch(&[done(2, 1)], 41_000).unwrap();
        assert_eq!(o[0], OpOutcome::Completed { order: None });
        assert_eq!(r.counters().unwrap().leases_expired, 2);

        // Recovery at start: this node's leases and expired ones; another node's live one stays.
        let other = WriteOp::Claim {
            id: 3,
            attempt: 2,
            lease: Lease {
                owner: "node-b:1".into(),
                duration_ms: 30_000,
            },
        };
        w.commit_batch(&[other], 50_000).unwrap();
        assert_eq!(w.recover_in_flight("node-a:1", 60_000).unwrap(), 1);
        assert_eq!(state(&r, 1).0, MessageState::Queued);
        assert_eq!(state(&r, 3).0, MessageState::Processing);
        assert_eq!(w.recover_in_flight("node-a:1", 90_000).unwrap(), 1);
        assert_eq!(state(&r, 3), (MessageState::Queued, 2));
    }
}
