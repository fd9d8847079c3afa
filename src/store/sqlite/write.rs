//! The write connection and the SQLite side of the transaction interface. Only the writer
//! thread holds it, so there is never lock contention between writers and `BEGIN IMMEDIATE`
//! never waits on another hookvault thread. What the ops mean is `store/state_machine.rs`;
//! this file only runs statements, and copies the WAL back (checkpoints) between commits.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ToSql, Transaction, TransactionBehavior};

use super::checkpointer::Checkpointer;
use super::{cells, sql_err};
use crate::store::error::StoreResult;
use crate::store::sql::{Announce, Row, Rules, SqlBackend, SqlTx, Value, Writers};
use crate::store::sql_store::SqlStore;

/// The write side on SQLite: the state machine over this connection.
pub type SqliteWriter = SqlStore<SqliteBackend>;

/// One node owns the file: no row needs locking, no sweep needs a lock of its own.
const RULES: Rules = Rules {
    writers: Writers::OneNode,
    claim: "UPDATE messages SET state = 'processing', attempts = ?2, lease_owner = ?3, \
            lease_until = ?4 WHERE id = ?1 AND state = 'queued' AND attempts = ?2 - 1",
    // Named, not left to the planner: without statistics it prefers the (state, id) index and
    // sorts every processed row by finish time.
    purge_candidates: "SELECT id FROM messages INDEXED BY messages_processed_finished \
                       WHERE state = 'processed' AND finished_at < ?1 \
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                       AND d.state IN ('pending', 'sending', 'dead')) \
                       ORDER BY finished_at LIMIT ?2",
    own_delivery_candidates: "SELECT id FROM deliveries INDEXED BY deliveries_own_finished \
                              WHERE message_id IS NULL AND state IN ('delivered', 'discarded') \
                              AND finished_at < ?1 ORDER BY finished_at LIMIT ?2",
    sweep_lock: None,
};

/// The statement as this backend runs it: one writer needs no row locks, so a shared
/// statement's `FOR UPDATE [SKIP LOCKED]` is dropped (a slice of the same text, no copy).
fn unlocked(sql: &'static str) -> &'static str {
    sql.strip_suffix(" FOR UPDATE SKIP LOCKED")
        .or_else(|| sql.strip_suffix(" FOR UPDATE"))
        .unwrap_or(sql)
}

/// Statements the state machine and the backend prepare; the connection keeps them all.
const STATEMENT_CACHE: usize = 96;

pub struct SqliteBackend {
    conn: Connection,
    /// Held as long as this writer lives (see `store::instance_lock`).
    pub(super) instance_lock: Option<crate::store::instance_lock::InstanceLock>,
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
            .prepare_cached(unlocked(sql))
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
        let mut stmt = self.tx.prepare_cached(unlocked(sql)).map_err(sql_err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), cells)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?;
        Ok(rows)
    }

    fn query_row(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<Row>> {
        // Every single-row statement here selects by a key: at most one row comes back.
        Ok(self.query(sql, params)?.pop())
    }

    /// The rows in one statement (a batch moves several counters).
    fn add_counters(&mut self, rows: &[(&'static str, i64)]) -> StoreResult<()> {
        for rows in rows.chunks(COUNTER_NAMES) {
            let params = rows
                .iter()
                .flat_map(|(name, value)| [Value::Text(name), Value::Int(*value)]);
            self.tx
                .prepare_cached(add_counters_sql(rows.len()))
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
                .map_err(sql_err)?;
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

/// `INSERT INTO counters ... VALUES (?1, ?2), (?3, ?4) ...` for `rows` rows, made once per
/// row count.
fn add_counters_sql(rows: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (1..=COUNTER_NAMES)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2))
                    .collect();
                format!(
                    "INSERT INTO counters (name, value) VALUES {} \
                     ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    values.join(", ")
                )
            })
            .collect()
    });
    &texts[rows.clamp(1, COUNTER_NAMES) - 1]
}

/// Counter rows one statement adds at most: the durable totals (SQLite stores no gauges).
const COUNTER_NAMES: usize = 11;

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::sqlite;

    fn backend(path: &Path) -> SqliteBackend {
        sqlite::open(path, 1).unwrap().0.into_backend()
    }

    /// A commit that changes a row.
    fn change(w: &mut SqliteBackend) {
        w.transaction(|tx| tx.raise_counter("test", crate::base::time::now_ms()))
            .unwrap();
    }

    /// An idle writer sleeps until an op arrives when `maintain` says nothing is due: only
    /// commits that changed rows make a checkpoint due, once the writer has been idle for
    /// [`CHECKPOINT_AFTER_IDLE`]; a commit that changed nothing (an idle lease tick) does not.
    #[test]
    fn maintain_says_when_a_checkpoint_is_next_due() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let mut w = backend(&dir.path().join("t.db"));
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "fresh: nothing due"
        );
        change(&mut w);
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
        w.transaction(|tx| tx.query("SELECT id FROM messages", &[]))
            .unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "a commit that changed nothing needs no checkpoint"
        );
        change(&mut w);
        assert!(w.maintain(Duration::ZERO).unwrap().is_some());
    }

    /// A due checkpoint is handed to the checkpointer thread, which copies the WAL back on its
    /// own connection; the writer's final checkpoint stops the thread and truncates the WAL.
    #[test]
    fn the_checkpointer_thread_copies_the_wal_back_and_stops_before_the_final_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut w = backend(&db);
        change(&mut w);
        assert!(
            w.checkpointer.is_none(),
            "no thread before a checkpoint is due"
        );
        assert_eq!(w.maintain(CHECKPOINT_AFTER_IDLE).unwrap(), None);
        let checkpointer = w.checkpointer.as_ref().expect("started when due");
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
            w.checkpointer.is_none(),
            "stopped before the truncating checkpoint"
        );
        let wal = std::fs::metadata(dir.path().join("t.db-wal")).unwrap();
        assert_eq!(wal.len(), 0, "the final checkpoint truncated the WAL");
    }
}

#[cfg(test)]
mod retention_plans {
    use super::*;
    use crate::store::{sqlite, statements as sql};

    /// `EXPLAIN QUERY PLAN`'s lines for `statement` as this backend runs it.
    fn plan(conn: &Connection, statement: &'static str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", unlocked(statement)))
            .unwrap();
        let params = vec![rusqlite::types::Null; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// Retention reads deliveries through indexes only: a sweep costs what it removes (and,
    /// with nothing old enough, one index entry), never a pass over every delivery.
    #[test]
    fn the_retention_statements_find_deliveries_through_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        drop(sqlite::open(&db, 1).unwrap());
        let conn = Connection::open(&db).unwrap();
        for (statement, index) in [
            (RULES.own_delivery_candidates, "deliveries_own_finished"),
            (sql::DELETE_MESSAGE_DELIVERIES, "deliveries_message"),
            (sql::DELETE_MESSAGE_DELIVERY_ATTEMPTS, "deliveries_message"),
            (
                sql::DELETE_MESSAGE_DELIVERY_ATTEMPTS,
                "delivery_attempts_delivery",
            ),
            (sql::DELETE_DELIVERY_ATTEMPTS, "delivery_attempts_delivery"),
            (RULES.purge_candidates, "deliveries_message"),
        ] {
            let lines = plan(&conn, statement);
            assert!(
                lines.iter().any(|l| l.contains(index)),
                "{statement}: {lines:?}"
            );
            assert!(
                !lines.iter().any(|l| l.starts_with("SCAN")),
                "{statement}: {lines:?}"
            );
        }
    }
}
