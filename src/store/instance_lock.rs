//! One hookvault per database. Two processes on one database would each recover the other's
//! in-flight work at start and hand the same messages to two worker pools, so the second one
//! must refuse to start instead, saying who holds the database.
//!
//! The lock is an advisory `flock` on a file beside the database (`<database>.lock`), taken
//! before the database is opened and held for the life of the store. The kernel releases it
//! when the process ends, however it ends (`kill -9` included), so a stale lock cannot keep a
//! restart out. The file itself stays: deleting it on exit would race with a process opening
//! it. It holds the holder's pid and start time, for the message the next one prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::{StoreError, StoreResult};
use crate::time::{now_ms, rfc3339};

/// Held while the store is open; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file for the database at `database`.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut p = database.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lock for `database`, or says who holds it ([`StoreError::InUse`]).
    pub fn acquire(database: &Path) -> StoreResult<InstanceLock> {
        let path = Self::path_for(database);
        let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(StoreError::InUse {
                    lock_file: path.display().to_string(),
                    holder: if holder.is_empty() {
                        "a process that has not written its pid yet".into()
                    } else {
                        holder
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = format!("pid {} started {}\n", std::process::id(), rfc3339(now_ms()));
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        Ok(InstanceLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.db");
        let first = InstanceLock::acquire(&db).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("h.db.lock"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        let again = InstanceLock::acquire(&db).unwrap();
        assert_eq!(again.path(), InstanceLock::path_for(&db));
    }
}
