//! Backups of the database and putting one back: the file handling around the backend's copy.
//!
//! [`backup`] copies a live database beside a running `serve` (it takes no lock), into a
//! temporary file `TARGET.tmp-<pid>` that is verified, synced and renamed only when whole, so
//! a file at the target name is always a complete, checked copy. [`restore`] refuses while an
//! instance holds the database, moves the current database aside (never deletes it) and puts
//! the backup in its place the same way.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::model::{BackupProgress, CopySummary};
use super::sqlite;
use super::{InstanceLock, StoreError, StoreResult};
use crate::config::StorageSettings;
use crate::time::{now_ms, rfc3339};

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The backup as verified before anything was touched.
    pub backup: CopySummary,
    /// Where each file of the previous database went (`-wal`/`-shm` included when present).
    pub moved_aside: Vec<(PathBuf, PathBuf)>,
    /// Whether the previous database could be checked and closed out (false: it did not open
    /// as a database, and was moved aside as it was).
    pub previous_checked: bool,
}

/// Copies the live database `settings` point at to `target`, reporting progress after each
/// step, and verifies the copy before it takes the target name. An existing `target` is
/// refused unless `overwrite`. On any failure (a full disk included) the partial file is
/// removed.
pub fn backup(
    settings: &StorageSettings,
    target: &Path,
    overwrite: bool,
    progress: &mut dyn FnMut(BackupProgress),
) -> StoreResult<CopySummary> {
    super::sqlite_only(settings, "backup")?;
    let source = &settings.path;
    if !source.is_file() {
        return Err(StoreError::Io(format!(
            "no database at {}; pass --db or set storage.path",
            source.display()
        )));
    }
    check_target_dir(target)?;
    if target.exists() {
        if !overwrite {
            return Err(StoreError::Io(format!(
                "{} exists; choose another name or pass --force to replace it",
                target.display()
            )));
        }
        if same_file(source, target) {
            return Err(StoreError::Io(format!(
                "{} is the live database itself",
                target.display()
            )));
        }
    }
    let tmp = tmp_name(target);
    let result = sqlite::backup::copy_live(source, &tmp, progress)
        .and_then(|()| sqlite::backup::verify(&tmp))
        .and_then(|summary| install(&tmp, target).map(|()| summary));
    if result.is_err() {
        remove_partial(&tmp);
    }
    result
}

/// Verifies the backup at `backup_file` and puts it in place of the database `settings` point
/// at, which must not be in use (it takes the instance lock, [`InstanceLock`]; a database other processes have
/// open is refused as well). An existing database is moved aside to
/// `<db>.before-restore-<UTC time>` (with its `-wal` and `-shm`), never deleted, and only
/// when `replace_existing`.
pub fn restore(
    settings: &StorageSettings,
    backup_file: &Path,
    replace_existing: bool,
) -> StoreResult<Restored> {
    super::sqlite_only(settings, "restore")?;
    let db = &settings.path;
    if !backup_file.is_file() {
        return Err(StoreError::Io(format!(
            "no backup at {}",
            backup_file.display()
        )));
    }
    let summary = sqlite::backup::verify(backup_file)?;
    check_target_dir(db)?;
    let _lock = InstanceLock::acquire(db)?;
    let mut moved_aside = Vec::new();
    let mut previous_checked = true;
    if db.exists() {
        if same_file(db, backup_file) {
            return Err(StoreError::Io(format!(
                "{} is the database itself",
                backup_file.display()
            )));
        }
        if !replace_existing {
            return Err(StoreError::Io(format!(
                "a database exists at {}; pass --force to move it aside (to {}.before-restore-<time>) \
                 and put the backup in its place",
                db.display(),
                db.display()
            )));
        }
        previous_checked = sqlite::backup::close_out_if_unused(db)?;
        let aside = PathBuf::from(format!(
            "{}.before-restore-{}",
            db.display(),
            compact_utc(now_ms())
        ));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", db.display()));
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            if !from.exists() {
                continue;
            }
            if to.exists() {
                return Err(StoreError::Io(format!(
                    "{} exists already; wait a second and run restore again",
                    to.display()
                )));
            }
            std::fs::rename(&from, &to).map_err(|e| io(&from, e))?;
            moved_aside.push((from, to));
        }
        sync_dir(db)?;
    }
    let tmp = tmp_name(db);
    let copied = std::fs::copy(backup_file, &tmp)
        .map_err(|e| io(&tmp, e))
        .and_then(|_| install(&tmp, db));
    if let Err(e) = copied {
        remove_partial(&tmp);
        return Err(e);
    }
    Ok(Restored {
        backup: summary,
        moved_aside,
        previous_checked,
    })
}

/// The directory `path` goes into must exist (it is not created: a typo should not make a
/// tree of directories).
fn check_target_dir(path: &Path) -> StoreResult<()> {
    let dir = parent(path);
    if !dir.is_dir() {
        return Err(StoreError::Io(format!(
            "directory {} does not exist; create it first",
            dir.display()
        )));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `PATH.tmp-<pid>`: beside the target (so the rename stays on one file system) and unique to
/// this process.
fn tmp_name(target: &Path) -> PathBuf {
    PathBuf::from(format!("{}.tmp-{}", target.display(), std::process::id()))
}

/// Syncs `tmp`, renames it to `target` and syncs the directory, so after a power cut the
/// target name holds either the old file or the whole new one.
fn install(tmp: &Path, target: &Path) -> StoreResult<()> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(tmp, e))?;
    std::fs::rename(tmp, target).map_err(|e| io(target, e))?;
    sync_dir(target)
}

fn sync_dir(path: &Path) -> StoreResult<()> {
    let dir = parent(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn remove_partial(tmp: &Path) {
    for suffix in ["", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A file-name-friendly UTC time: `20261201T014500Z`.
fn compact_utc(ms: i64) -> String {
    rfc3339(ms)
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect::<String>()
        + "Z"
}

/// A file-system failure, with ENOSPC as a full disk.
fn io(path: &Path, e: std::io::Error) -> StoreError {
    let detail = format!("{}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::StorageFull {
        StoreError::DiskFull(detail)
    } else {
        StoreError::Io(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aside_name_is_a_compact_utc_time() {
        // 2026-12-01T01:45:00.123Z
        assert_eq!(compact_utc(1_796_089_500_123), "20261201T014500Z");
    }
}
