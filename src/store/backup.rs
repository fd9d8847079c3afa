//! Backups of the database and putting one back: the file handling around the backend's copy.
//!
//! [`backup`] copies a live database beside a running `serve` (it takes no lock), into a
//! temporary file `TARGET.tmp-<pid>` that is verified, synced and renamed only when whole, so
//! a file at the target name is always a complete, checked copy. [`restore`] refuses while an
//! instance holds the database, moves the current database aside (never deletes it) and puts
//! the backup in its place the same way.
//!
//! The process writing a temporary file holds an advisory lock (`flock`) on it for as long as
//! it writes; the kernel drops the lock when the process ends, however it ends. A temporary
//! whose lock is free and whose process is gone was left by an interrupted run (`kill -9`, a
//! power cut), and [`remove_stale_temporaries`] removes it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::model::{BackupProgress, CopySummary};
use super::sqlite;
use super::sqlite_file::sqlite_only;
use crate::base::time::{now_ms, rfc3339};
use crate::settings::StorageSettings;
use crate::store::error::{StoreError, StoreResult};
use crate::store::instance_lock::InstanceLock;

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
    sqlite_only(settings, "backup")?;
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
    let tmp = Temporary::create(target)?;
    let result = sqlite::backup::copy_live(source, &tmp.path, progress)
        .and_then(|()| sqlite::backup::verify(&tmp.path))
        .and_then(|summary| install(&tmp.path, target).map(|()| summary));
    if result.is_err() {
        remove_partial(&tmp.path);
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
    sqlite_only(settings, "restore")?;
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
    let tmp = Temporary::create(db)?;
    let copied = std::fs::copy(backup_file, &tmp.path)
        .map_err(|e| io(&tmp.path, e))
        .and_then(|_| install(&tmp.path, db));
    if let Err(e) = copied {
        remove_partial(&tmp.path);
        return Err(e);
    }
    Ok(Restored {
        backup: summary,
        moved_aside,
        previous_checked,
    })
}

/// What `serve` would do with a database's schema, as `hookvault schema` reports it before an
/// upgrade: a deploy takes a backup when the new binary will migrate, since the binary before
/// it refuses the migrated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPlan {
    /// No database yet: `serve` creates one at the binary's version.
    Create,
    /// The database is at the binary's version.
    Current,
    /// The database is older: `serve` migrates it in place.
    Migrate,
    /// The database is newer than this binary runs: `serve` refuses to start on it.
    Refuse,
}

impl SchemaPlan {
    /// The word `hookvault schema` prints after `on_serve=`.
    pub fn word(self) -> &'static str {
        match self {
            SchemaPlan::Create => "create",
            SchemaPlan::Current => "none",
            SchemaPlan::Migrate => "migrate",
            SchemaPlan::Refuse => "refuse",
        }
    }
}

/// The schema version this binary runs against the database's.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaReport {
    pub binary: i64,
    /// `None`: no database file yet.
    pub database: Option<i64>,
    pub plan: SchemaPlan,
}

/// Reads the schema version of the SQLite database `settings` point at (without changing
/// anything) and says what this binary's `serve` would do with it.
pub fn schema_report(settings: &StorageSettings) -> StoreResult<SchemaReport> {
    sqlite_only(settings, "schema")?;
    let binary = sqlite::backup::binary_schema_version();
    let database = sqlite::backup::schema_version(&settings.path)?;
    let plan = match database {
        // 0: an empty file, which `serve` fills with the schema like a new one.
        None | Some(0) => SchemaPlan::Create,
        Some(v) if v == binary => SchemaPlan::Current,
        Some(v) if v < binary => SchemaPlan::Migrate,
        Some(_) => SchemaPlan::Refuse,
    };
    Ok(SchemaReport {
        binary,
        database,
        plan,
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

/// This process's temporary file, created new and locked for as long as the value lives, so
/// a [`remove_stale_temporaries`] in another process leaves it alone.
struct Temporary {
    path: PathBuf,
    _locked: File,
}

impl Temporary {
    fn create(target: &Path) -> StoreResult<Temporary> {
        let path = tmp_name(target);
        // A file of ours by this name can only be one a crashed run of the same pid left.
        if std::fs::remove_file(&path).is_ok() {
            log::info!(
                "removed {}, left by an earlier process with this pid",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.try_lock().map_err(|e| {
            let _ = std::fs::remove_file(&path);
            StoreError::Io(format!("{}: cannot lock it: {e}", path.display()))
        })?;
        Ok(Temporary {
            path,
            _locked: file,
        })
    }
}

/// A temporary file an interrupted backup or restore left behind, and that was removed.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleTemporary {
    pub path: PathBuf,
    pub bytes: u64,
    /// The process that wrote it (from its name), no longer running.
    pub pid: u32,
}

/// Removes the temporaries that interrupted backups and restores left in the directory `beside`
/// is in: files named `NAME.tmp-<pid>` that are empty or start like a database being copied, whose
/// lock nobody holds and whose process is no longer running. Files this process writes, and
/// anything else in the directory, are left alone. Returns what was removed.
pub fn remove_stale_temporaries(beside: &Path) -> StoreResult<Vec<StaleTemporary>> {
    let dir = parent(beside);
    if !dir.is_dir() {
        // Nothing to tidy; the backup itself says the directory is missing.
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = temporary_pid(&path) else {
            continue;
        };
        if pid == std::process::id() || process_running(pid) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || !(meta.len() == 0 || starts_like_sqlite(&path)) {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            // Still being written: its process is alive where this one cannot see it.
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        let _ = std::fs::remove_file(format!("{}-journal", path.display()));
        removed.push(StaleTemporary {
            path,
            bytes: meta.len(),
            pid,
        });
    }
    if !removed.is_empty() {
        sync_dir(beside)?;
    }
    removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(removed)
}

/// The pid in a temporary's name `NAME.tmp-<pid>`; None for any other name.
fn temporary_pid(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (stem, pid) = name.rsplit_once(".tmp-")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid is visible. Where `/proc` hides other users' processes, a
/// running one looks gone; the lock on its file still protects it.
fn process_running(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether the file starts with SQLite's header, or with zeros where it goes: SQLite's copy
/// writes the first page of its destination only when the copy is complete.
fn starts_like_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| &head == b"SQLite format 3\0" || head == [0u8; 16])
        .unwrap_or(false)
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
    fn only_names_ending_in_tmp_and_a_pid_are_temporaries() {
        for (name, pid) in [
            ("hookvault-20261201.db.tmp-4242", Some(4242)),
            ("/var/backups/b.db.tmp-7", Some(7)),
            ("b.db.tmp-", None),
            ("b.db.tmp-12x", None),
            (".tmp-12", None),
            ("b.db.tmp-12-journal", None),
            ("b.db", None),
        ] {
            assert_eq!(temporary_pid(Path::new(name)), pid, "{name}");
        }
    }

    #[test]
    fn a_temporary_whose_process_is_gone_is_removed_and_a_locked_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.db");
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let stale = dir.path().join("b.db.tmp-4194305");
        let content = b"SQLite format 3\0and then some pages";
        std::fs::write(&stale, content).unwrap();
        let journal = dir.path().join("b.db.tmp-4194305-journal");
        std::fs::write(&journal, b"x").unwrap();
        let zeros = dir.path().join("c.db.tmp-4194308");
        std::fs::write(&zeros, [0u8; 4096]).unwrap();
        let foreign = dir.path().join("notes.tmp-4194306");
        std::fs::write(&foreign, b"not a database").unwrap();
        let ours = Temporary::create(&target).unwrap();
        // Written by a process this one cannot see (its lock is what says it is alive).
        let hidden = dir.path().join("b.db.tmp-4194307");
        std::fs::write(&hidden, b"").unwrap();
        let hidden_lock = File::open(&hidden).unwrap();
        hidden_lock.try_lock().unwrap();
        let removed = remove_stale_temporaries(&target).unwrap();
        assert_eq!(
            removed,
            vec![
                StaleTemporary {
                    path: stale.clone(),
                    bytes: content.len() as u64,
                    pid: 4_194_305
                },
                StaleTemporary {
                    path: zeros.clone(),
                    bytes: 4096,
                    pid: 4_194_308
                }
            ]
        );
        assert!(!stale.exists() && !journal.exists());
        assert!(foreign.exists(), "not an SQLite file: kept");
        assert!(ours.path.exists(), "this process's own: kept");
        assert!(hidden.exists(), "locked: kept");
    }

    #[test]
    fn the_aside_name_is_a_compact_utc_time() {
        // 2026-12-01T01:45:00.123Z
        assert_eq!(compact_utc(1_796_089_500_123), "20261201T014500Z");
    }
}
