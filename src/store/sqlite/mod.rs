//! The embedded SQLite backend: one write connection (owned by the writer thread) and a small
//! pool of read-only connections. WAL lets readers run beside the writer without blocking it;
//! `synchronous=FULL` makes every commit survive a power cut, which is the promise.

pub mod backup;
pub(super) mod check;
mod checkpointer;
mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

pub use read::SqliteReader;
#[cfg(feature = "postgres")]
pub use schema::SCHEMA_VERSION;
pub use write::{SqliteBackend, SqliteWriter};

use super::error::StoreError;
use super::instance_lock::InstanceLock;
use super::sql::{Cell, Row};

/// SQLite writes whole pages to the WAL, and a webhook's commit touches a handful of pages
/// (its rows, the state index, the counters) however small it is. Smaller pages mean fewer
/// bytes written per webhook, which is what wears out a Raspberry Pi's SD card; see
/// docs/performance.md for the measured effect.
pub const PAGE_SIZE: u32 = 1024;

/// Opens (creating and migrating if needed) the database at `path`.
pub fn open(
    path: &Path,
    read_connections: usize,
) -> Result<(SqliteWriter, SqliteReader), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            return Err(StoreError::Io(format!(
                "directory {} does not exist; create it or point storage.path elsewhere",
                dir.display()
            )));
        }
    }
    // Before anything touches the database: a second instance must not even run recovery.
    let lock = InstanceLock::acquire(path)?;
    let mut conn = Connection::open(path).map_err(|e| unavailable(path, e))?;
    // Only a new, empty database takes a page size (before WAL mode is switched on).
    conn.pragma_update(None, "page_size", PAGE_SIZE)
        .map_err(|e| unavailable(path, e))?;
    configure(&conn, false).map_err(|e| unavailable(path, e))?;
    schema::migrate(&mut conn)?;
    let mut backend = SqliteBackend::new(conn)?;
    backend.instance_lock = Some(lock);
    let writer = SqliteWriter::new(backend);
    let mut readers = Vec::with_capacity(read_connections);
    for _ in 0..read_connections.max(1) {
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| unavailable(path, e))?;
        configure(&c, true).map_err(|e| unavailable(path, e))?;
        readers.push(c);
    }
    Ok((writer, SqliteReader::new(PathBuf::from(path), readers)))
}

fn configure(conn: &Connection, read_only: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints are ours to run (see `CHECKPOINT_AFTER_IDLE` in write.rs): an automatic
        // one inside a commit would put its cost on whichever webhook happened to be acked.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    }
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -2000)?;
    Ok(())
}

fn unavailable(path: &Path, e: rusqlite::Error) -> StoreError {
    classify(&e, format!("{}: {e}", path.display()))
}

/// A result row as cells (see [`Row`]), for what is read above the backend.
fn cells(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let columns = r.as_ref().column_count();
    (0..columns)
        .map(|i| {
            r.get_ref(i).map(|v| match v {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(i) => Cell::Int(i),
                ValueRef::Real(f) => Cell::Int(f as i64),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()
        .map(Row)
}

pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    classify(&e, e.to_string())
}

/// Sorts an SQLite failure into the kind an operator acts on; `detail` is the message kept.
fn classify(e: &rusqlite::Error, detail: String) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => StoreError::DiskFull(detail),
        Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt(detail),
        Some(C::DatabaseBusy | C::DatabaseLocked | C::FileLockingProtocolFailed) => {
            StoreError::Busy(detail)
        }
        Some(
            C::SystemIoFailure
            | C::CannotOpen
            | C::PermissionDenied
            | C::ReadOnly
            | C::NoLargeFileSupport
            | C::NotFound,
        ) => StoreError::Io(detail),
        _ => StoreError::Other(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_failures_say_which_kind_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("x.db");
        assert!(matches!(open(&missing, 1), Err(StoreError::Io(m)) if m.contains("no-such-dir")));

        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
        assert!(matches!(open(&junk, 1), Err(StoreError::Corrupt(_))));

        let newer = dir.path().join("newer.db");
        let c = Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = open(&newer, 1).err().unwrap();
        assert_eq!(
            e,
            StoreError::NewerSchema {
                found: 99,
                supported: schema::SCHEMA_VERSION
            }
        );
        assert!(e.to_string().contains("schema version 99"));
    }
}
