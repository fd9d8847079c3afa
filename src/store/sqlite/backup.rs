//! SQLite's side of `hookvault backup`, `restore` and `schema`: an online copy of a live
//! database, the check that a copy is whole, the check that nobody has a database open, and
//! a database's schema version.
//!
//! The copy pins one read snapshot (WAL) for its whole run and copies it in steps. A WAL
//! reader never blocks the writer, so `serve` keeps committing while the copy runs; holding the
//! snapshot is also what keeps the copy from restarting: SQLite restarts an online backup
//! whenever another connection changes the source between steps, unless the backup's own read
//! transaction stays open across them. The cost is that `serve`'s checkpoints (PASSIVE) cannot
//! move past the snapshot, so the WAL grows by what is written during the copy and is folded
//! back at the first checkpoint after it.
//!
//! The copy is paced: small steps, each synced, with a rest after each as long as the step
//! took. `serve` acknowledges a webhook only after its own fsync, and on one disk that fsync
//! queues behind whatever the copy has in flight; short bursts with gaps between them keep
//! that wait short, at the price of a backup that takes about twice as long.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{schema, unavailable, PAGE_SIZE};
use crate::store::error::{StoreError, StoreResult};
use crate::store::model::{BackupProgress, CopySummary};

/// Pages copied (and then synced) per step: 1 MiB at the 1 KiB page size, so one step's
/// writes hold `serve`'s fsync up only briefly (see the module comment).
const PAGES_PER_STEP: i32 = (1024 * 1024 / PAGE_SIZE) as i32;

/// The rest after a step, as a multiple of the time the step took (copy and sync): the copy
/// takes the disk at most half the time, and rests longer when the disk is slow or busy.
const REST_PER_STEP_TIME: u32 = 1;

/// The shortest rest after a step, so even a fast disk gives `serve`'s commits a gap.
const MIN_REST: Duration = Duration::from_millis(5);

/// How long a step may keep answering "busy" before the copy gives up. With the snapshot
/// pinned the source never is; the destination is a private file nobody else opens.
const BUSY_LIMIT: Duration = Duration::from_secs(10);

/// Copies the database at `source` into the file `target` (new and empty), reporting after
/// every step. The copy is left in rollback-journal mode: one file, no `-wal`
/// beside it, and `serve` switches it back to WAL when it opens it.
pub fn copy_live(
    source: &Path,
    target: &Path,
    progress: &mut dyn FnMut(BackupProgress),
) -> StoreResult<()> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| unavailable(source, e))?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(|e| unavailable(source, e))?;
    // Start the read transaction the whole copy runs in (see the module comment).
    src.execute_batch("BEGIN DEFERRED")
        .map_err(|e| unavailable(source, e))?;
    src.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| unavailable(source, e))?;

    let mut dst = Connection::open(target).map_err(|e| unavailable(target, e))?;
    // Synced after every step (SQLite itself commits the copy only at the end): a gigabyte of
    // dirty pages flushed at once would queue `serve`'s own fsyncs behind it for seconds, and
    // a small box has no memory to spare for them.
    let flush = std::fs::File::open(target).map_err(|e| file_err(target, e))?;
    // The copy is written under a temporary name and synced as a whole at the end; a journal
    // would only double its writes.
    dst.pragma_update(None, "journal_mode", "OFF")
        .map_err(|e| unavailable(target, e))?;
    dst.pragma_update(None, "synchronous", "OFF")
        .map_err(|e| unavailable(target, e))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(|e| unavailable(target, e))?;
        let mut busy_since = None;
        loop {
            let step_started = Instant::now();
            let step = backup
                .step(PAGES_PER_STEP)
                .map_err(|e| unavailable(target, e))?;
            let p = backup.progress();
            let total = p.pagecount.max(0) as u64;
            progress(BackupProgress {
                pages_done: total.saturating_sub(p.remaining.max(0) as u64),
                pages_total: total,
                page_size: PAGE_SIZE,
            });
            match step {
                StepResult::Done => break,
                StepResult::More => {
                    busy_since = None;
                    flush.sync_data().map_err(|e| file_err(target, e))?;
                    std::thread::sleep(rest_after(step_started.elapsed()));
                }
                StepResult::Busy | StepResult::Locked => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > BUSY_LIMIT {
                        return Err(StoreError::Busy(format!(
                            "{} stayed locked for {}s during the backup",
                            source.display(),
                            BUSY_LIMIT.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // StepResult is non-exhaustive; any new answer is treated as "keep going".
                _ => {}
            }
        }
    }
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| unavailable(target, e))?;
    dst.close().map_err(|(_, e)| unavailable(target, e))?;
    src.execute_batch("COMMIT")
        .map_err(|e| unavailable(source, e))?;
    Ok(())
}

/// How long to rest after a step that took `step` (see [`REST_PER_STEP_TIME`]).
fn rest_after(step: Duration) -> Duration {
    (step * REST_PER_STEP_TIME).max(MIN_REST)
}

fn file_err(path: &Path, e: std::io::Error) -> StoreError {
    let detail = format!("{}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::StorageFull {
        StoreError::DiskFull(detail)
    } else {
        StoreError::Io(detail)
    }
}

/// Opens the copy at `path` read-only and checks it: `PRAGMA integrity_check` must say `ok`,
/// the schema version must be one this binary can run, and the hookvault tables must be there.
/// Returns what is in it.
pub fn verify(path: &Path) -> StoreResult<CopySummary> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| unavailable(path, e))?;
    let integrity: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| unavailable(path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| unavailable(path, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| unavailable(path, e))?
    };
    if integrity != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "{}: integrity_check says: {}",
            path.display(),
            integrity.into_iter().take(5).collect::<Vec<_>>().join("; ")
        )));
    }
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| unavailable(path, e))?;
    if schema_version > schema::SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: schema_version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('messages', 'bodies', 'orders', 'counters')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| unavailable(path, e))?;
    if schema_version < 1 || tables < 4 {
        return Err(StoreError::Corrupt(format!(
            "{} is an SQLite database but not a hookvault one (schema version {schema_version})",
            path.display()
        )));
    }
    let messages_by_state = {
        let mut stmt = conn
            .prepare("SELECT state, count(*) FROM messages GROUP BY state ORDER BY state")
            .map_err(|e| unavailable(path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| unavailable(path, e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| unavailable(path, e))?
    };
    let orders: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .map_err(|e| unavailable(path, e))?;
    let bytes = std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    Ok(CopySummary {
        schema_version,
        messages_by_state,
        orders: orders as u64,
        bytes,
    })
}

/// The schema version this binary creates and runs.
pub fn binary_schema_version() -> i64 {
    schema::SCHEMA_VERSION
}

/// The schema version (`PRAGMA user_version`) of the database at `path`, read without changing
/// it; `None` when there is no file there yet.
pub fn schema_version(path: &Path) -> StoreResult<Option<i64>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| unavailable(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| unavailable(path, e))?;
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| unavailable(path, e))?;
    Ok(Some(version))
}

/// Makes sure no other connection has the database at `path` open, and leaves it as one
/// self-contained file: switching a WAL database back to rollback-journal mode needs every
/// other connection closed (SQLite answers "busy" or keeps WAL otherwise), and folds the
/// `-wal` file into the database on the way. `Ok(false)`: the file could not be opened as a
/// database at all (damaged), so nothing could be checked.
pub fn close_out_if_unused(path: &Path) -> StoreResult<bool> {
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => return unless_damaged(path, e),
    };
    // Fail at once instead of waiting for a running instance to let go.
    conn.busy_timeout(Duration::ZERO)
        .map_err(|e| unavailable(path, e))?;
    let mode: String = match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)) {
        Ok(m) => m,
        Err(e) => return unless_damaged(path, e),
    };
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(in_use(path, &format!("journal mode stayed {mode}")));
    }
    conn.close().map_err(|(_, e)| unavailable(path, e))?;
    Ok(true)
}

/// A failure of [`close_out_if_unused`]: busy means in use; damage means "nothing checked".
fn unless_damaged(path: &Path, e: rusqlite::Error) -> StoreResult<bool> {
    match unavailable(path, e) {
        StoreError::Busy(detail) => Err(in_use(path, &detail)),
        StoreError::Corrupt(_) => Ok(false),
        other => Err(other),
    }
}

fn in_use(path: &Path, detail: &str) -> StoreError {
    StoreError::Busy(format!(
        "{} is open in another process, most likely a running `hookvault serve`; stop it first \
         ({detail})",
        path.display()
    ))
}
