//! The thread that copies the WAL back into the database file while the writer keeps
//! committing. A PASSIVE checkpoint takes no lock a writer needs (WAL mode lets it run beside
//! commits), so on its own connection it no longer stalls the acknowledgements that arrive
//! meanwhile, as it did on the writer thread between commits.
//!
//! The writer asks when a checkpoint is due; the thread sleeps on its request channel and wakes
//! for nothing else (an idle server's checkpointer never runs), except to try a failed
//! checkpoint again after [`RETRY`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use rusqlite::Connection;

use super::sql_err;
use crate::base::lifecycle::Thread;
use crate::store::error::StoreResult;

/// How soon a checkpoint that failed (disk full, I/O error) is tried again, as the writer
/// tries its failed housekeeping again.
const RETRY: Duration = Duration::from_secs(1);

pub(super) struct Checkpointer {
    /// Dropped to stop the thread: it belongs to the store, not to the service's list, and
    /// ends when the store closes.
    requests: Option<Sender<()>>,
    thread: Option<Thread>,
    /// WAL frames the last checkpoint saw (the WAL's length then); see
    /// [`Checkpointer::wal_frames`].
    wal_frames: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Opens a second connection to the database at `path` and starts the thread.
    pub(super) fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(sql_err)?;
        // The checkpoint's own writes into the database file must be as durable as the
        // writer's: a checkpoint that says it is done must be on disk.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql_err)?;
        // It reads no rows: a small page cache is all it needs.
        conn.pragma_update(None, "cache_size", -64)
            .map_err(sql_err)?;
        let (tx, rx) = bounded(1);
        let wal_frames = Arc::new(AtomicU64::new(0));
        let frames = Arc::clone(&wal_frames);
        let thread = Thread::spawn("checkpointer", move || run(conn, rx, &frames))
            .map_err(|e| crate::store::error::StoreError::Other(e.to_string()))?;
        Ok(Checkpointer {
            requests: Some(tx),
            thread: Some(thread),
            wal_frames,
        })
    }

    /// Asks for a checkpoint; returns at once. A request already waiting covers this one too
    /// (a checkpoint copies whatever the WAL holds when it starts).
    pub(super) fn request(&self) {
        if let Some(tx) = &self.requests {
            match tx.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    log::warn!("the WAL checkpointer thread has ended; no checkpoint until the writer's final one")
                }
            }
        }
    }

    /// The WAL's length in frames when the last checkpoint ran. A checkpoint beside the
    /// writer copies what was committed when it started, and the writer goes on appending, so
    /// the WAL may never be fully copied at the moment a commit starts, which is when SQLite
    /// starts the WAL over from its beginning; the writer watches this and, when the WAL has
    /// grown long, checkpoints once itself between commits (see `SqliteWriter::maintain`).
    pub(super) fn wal_frames(&self) -> u64 {
        self.wal_frames.load(Relaxed)
    }

    /// After the writer's own checkpoint, which copied the WAL to its end.
    pub(super) fn set_wal_frames(&self, frames: u64) {
        self.wal_frames.store(frames, Relaxed);
    }
}

impl Drop for Checkpointer {
    /// Stops the thread after the checkpoint it is running, if any, and waits for it: the
    /// writer's final (truncating) checkpoint must not meet it.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            t.join();
        }
    }
}

fn run(conn: Connection, requests: Receiver<()>, wal_frames: &AtomicU64) {
    let mut failing = false;
    loop {
        let asked = if failing {
            match requests.recv_timeout(RETRY) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            }
        } else {
            requests.recv().is_ok()
        };
        if !asked {
            return;
        }
        match conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
            .map_err(sql_err)
        {
            Ok(frames) => {
                if failing {
                    log::info!("WAL checkpoint succeeded again");
                }
                failing = false;
                wal_frames.store(frames.max(0) as u64, Relaxed);
            }
            Err(e) => {
                log::warn!(
                    "storage housekeeping (WAL checkpoint) failed: {e}; trying again in {RETRY:?}"
                );
                failing = true;
            }
        }
    }
}
