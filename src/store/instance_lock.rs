//! One hookvault per database. Two processes on one database would each recover the other's
//! in-flight work at start and hand the same messages to two worker pools, so the second one
//! must refuse to start instead, saying who holds the database.
//!
//! The lock is an advisory `flock` on a file beside the database (`<database>.lock`), taken
//! before the database is opened and held for the life of the store. "The database" is the
//! real file, whatever path names it: symbolic links (to the file or to a directory on the
//! way) are followed first, as SQLite itself follows them when it opens the file, so a path
//! through a link and the file's own path take one lock. A path whose directory cannot be
//! resolved is refused: the lock could not be known to be the one the other path takes. The kernel releases it
//! when the process ends, however it ends (`kill -9` included), so a stale lock cannot keep a
//! restart out. The file itself stays: deleting it on exit would race with a process opening
//! it. It holds the holder's pid and start time, for the message the next one prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::base::time::{now_ms, rfc3339};
use crate::store::error::{StoreError, StoreResult};

/// Held while the store is open; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// How many symbolic links in a row are followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

impl InstanceLock {
    /// The lock file for the database at `database`: beside the real file (see the module
    /// docs), or why that file cannot be found.
    pub fn path_for(database: &Path) -> StoreResult<PathBuf> {
        let mut p = real_path(database)?.into_os_string();
        p.push(".lock");
        Ok(PathBuf::from(p))
    }

    /// Takes the lock for `database`, or says who holds it ([`StoreError::InUse`]).
    pub fn acquire(database: &Path) -> StoreResult<InstanceLock> {
        let path = Self::path_for(database)?;
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
        Ok(InstanceLock { _file: file })
    }
}

/// The database's real path: symbolic links to the file followed (a dangling one too: SQLite
/// would create the file it names), and its directory resolved to its canonical form.
fn real_path(database: &Path) -> StoreResult<PathBuf> {
    let unresolved = |why: String| {
        StoreError::Io(format!(
            "cannot resolve the database path {}: {why}; point storage.path (or --db) at a file in an existing, accessible directory",
            database.display()
        ))
    };
    let mut file = database.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&file).map_err(|e| unresolved(e.to_string()))?;
                file = match file.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            // Not a link, or nothing there yet (a new database): its directory decides.
            Ok(_) => return in_real_directory(&file).map_err(unresolved),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return in_real_directory(&file).map_err(unresolved)
            }
            Err(e) => return Err(unresolved(e.to_string())),
        }
    }
    Err(unresolved(format!("more than {MAX_LINKS} symbolic links")))
}

/// `file` with its directory canonical (every link and `..` on the way resolved).
fn in_real_directory(file: &Path) -> Result<PathBuf, String> {
    let name = file
        .file_name()
        .ok_or_else(|| "it names no file".to_string())?;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir =
        std::fs::canonicalize(dir).map_err(|e| format!("its directory {}: {e}", dir.display()))?;
    Ok(dir.join(name))
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
        InstanceLock::acquire(&db).unwrap();
    }

    #[test]
    fn every_path_to_one_file_takes_one_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let data = real.join("data");
        std::fs::create_dir(&data).unwrap();
        let db = data.join("h.db");
        std::fs::write(&db, b"").unwrap();
        // A link to the file, a link to its directory, a dangling link to a file not yet
        // created there, a link to a link, and `..` on the way.
        std::os::unix::fs::symlink(&db, real.join("file-link.db")).unwrap();
        std::os::unix::fs::symlink(&data, real.join("dir-link")).unwrap();
        std::os::unix::fs::symlink("data/new.db", real.join("new-link.db")).unwrap();
        std::os::unix::fs::symlink("file-link.db", real.join("link-link.db")).unwrap();
        let want = data.join("h.db.lock");
        for path in [
            db.clone(),
            real.join("file-link.db"),
            real.join("dir-link/h.db"),
            real.join("link-link.db"),
            data.join("../data/h.db"),
        ] {
            assert_eq!(
                InstanceLock::path_for(&path).unwrap(),
                want,
                "{}",
                path.display()
            );
        }
        assert_eq!(
            InstanceLock::path_for(&real.join("new-link.db")).unwrap(),
            data.join("new.db.lock")
        );
        let _first = InstanceLock::acquire(&db).unwrap();
        let err = InstanceLock::acquire(&real.join("dir-link/h.db")).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    }

    #[test]
    fn a_path_that_cannot_be_resolved_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir/h.db");
        let err = InstanceLock::acquire(&missing).unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err}");
        assert!(
            err.to_string().contains("cannot resolve the database path"),
            "{err}"
        );
        // A loop of links.
        let a = dir.path().join("a.db");
        std::os::unix::fs::symlink("b.db", &a).unwrap();
        std::os::unix::fs::symlink("a.db", dir.path().join("b.db")).unwrap();
        let err = InstanceLock::acquire(&a).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }
}
