//! What works on the SQLite file itself: `hookvault check`, and the refusal `check`, `backup`
//! and `restore` give on PostgreSQL.

use crate::settings::StorageSettings;
use crate::store::consistency::ConsistencyReport;
use crate::store::error::{StoreError, StoreResult};
use crate::store::sqlite;

/// `hookvault check`: the durable counters against the tables and the state and lease rules
/// (see `sqlite/check.rs` for the list); with `repair`, rebuilds what the tables can tell
/// first, under the write lock. The database must exist (it is migrated if older). SQLite
/// only: see `sqlite_only`.
pub fn check(settings: &StorageSettings, repair: bool) -> StoreResult<ConsistencyReport> {
    sqlite_only(settings, "check")?;
    sqlite::check::run(&settings.path, repair)
}

/// `check`, `backup` and `restore` work on the SQLite file; a PostgreSQL database has its
/// own tools (`pg_dump`, `pg_restore`, `amcheck`), and this says so instead of touching the
/// unused `storage.path`.
pub fn sqlite_only(settings: &StorageSettings, command: &str) -> StoreResult<()> {
    match settings.backend.as_str() {
        "sqlite" => Ok(()),
        other => Err(StoreError::Other(format!(
            "`hookvault {command}` is not supported on PostgreSQL (storage.backend = {other:?}); \
             use pg_dump/pg_restore (see docs/cluster.md)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backup;
    use crate::store::backup::restore;

    /// `check`, `backup` and `restore` on a PostgreSQL configuration answer what to use
    /// instead, and never touch the (unused) SQLite path.
    #[test]
    fn check_backup_and_restore_say_they_are_sqlite_only() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StorageSettings {
            backend: "postgres".into(),
            path: dir.path().join("unused.db"),
            url: Some("postgres://u@127.0.0.1/db".into()),
            ..Default::default()
        };
        let errors = [
            check(&settings, false).err().map(|e| e.to_string()),
            backup(&settings, &dir.path().join("b.db"), false, &mut |_| {})
                .err()
                .map(|e| e.to_string()),
            restore(&settings, &dir.path().join("b.db"), false)
                .err()
                .map(|e| e.to_string()),
        ];
        for (e, command) in errors.iter().zip(["check", "backup", "restore"]) {
            let e = e.as_deref().expect("refused");
            assert!(
                e.contains(&format!("hookvault {command}`"))
                    && e.contains("not supported on PostgreSQL")
                    && e.contains("pg_dump/pg_restore"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
