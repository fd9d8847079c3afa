//! `hookvault restore BACKUP`: puts a backup in place of the database, with `serve` stopped.
//! It verifies the backup first, refuses while an instance holds the database (its lock file,
//! or any process with the database open), and moves the current database aside rather than
//! deleting it. What it did is printed, so the operator knows where the old files went.

use std::path::PathBuf;

use super::backup::print_summary;
use super::load_settings;
use crate::base::error::Result;
use crate::settings::Sources;
use crate::store;

pub fn run(sources: Sources, backup_file: PathBuf, force: bool) -> Result<()> {
    let settings = load_settings(sources)?;
    let db = &settings.storage.path;
    let restored = store::restore(&settings.storage, &backup_file, force)?;
    println!(
        "restore: backup {} verified (integrity_check ok)",
        backup_file.display()
    );
    print_summary(&restored.backup);
    if !restored.previous_checked {
        println!(
            "restore: the previous database did not open as a database; moved aside as it was"
        );
    }
    for (from, to) in &restored.moved_aside {
        println!(
            "restore: moved {} aside to {}",
            from.display(),
            to.display()
        );
    }
    println!(
        "restore: {} now holds the backup; start hookvault again (e.g. systemctl start hookvault)",
        db.display()
    );
    if let Some((_, aside)) = restored.moved_aside.first() {
        println!(
            "restore: the previous database is kept at {}; remove it yourself once you are sure",
            aside.display()
        );
    }
    Ok(())
}
