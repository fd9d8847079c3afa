//! The embedded SQLite backend: one write connection (owned by the writer thread) and a small
//! pool of read-only connections. WAL lets readers run beside the writer without blocking it;
//! `synchronous=FULL` makes every commit survive a power cut, which is the promise.

mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use read::SqliteReader;
pub use write::SqliteWriter;

use super::StoreError;

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
            return Err(StoreError::Unavailable(format!(
                "directory {} does not exist; create it or point storage.path elsewhere",
                dir.display()
            )));
        }
    }
    let mut conn = Connection::open(path).map_err(|e| unavailable(path, e))?;
    // Only a new, empty database takes a page size (before WAL mode is switched on).
    conn.pragma_update(None, "page_size", PAGE_SIZE)
        .map_err(|e| unavailable(path, e))?;
    configure(&conn, false).map_err(|e| unavailable(path, e))?;
    schema::migrate(&mut conn)?;
    let writer = SqliteWriter::new(conn)?;
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
        // Checkpoints are ours to run (see SqliteWriter::checkpoint_if_large): an automatic
        // one inside a commit would put its cost on whichever webhook happened to be acked.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    }
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -2000)?;
    Ok(())
}

fn unavailable(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
