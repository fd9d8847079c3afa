//! `hookvault backup PATH`: a consistent copy of the live database while `serve` keeps
//! acknowledging, with a progress line on stderr and the verified copy's contents on stdout.
//! It takes no instance lock: it is meant to run beside `serve` (see `systemd/` for the nightly
//! timer and docs/operations.md for off-box copies and restoring). First it removes the
//! temporary files interrupted backups left beside the target, and says which.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::load_settings;
use crate::base::error::Result;
use crate::settings::Sources;
use crate::store::{self, BackupProgress, CopySummary};

/// How often the progress line is printed (and once more at the end).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub fn run(sources: Sources, target: PathBuf, force: bool) -> Result<()> {
    let settings = load_settings(sources)?;
    remove_stale_temporaries(&target);
    let started = Instant::now();
    let mut line = ProgressLine::new(started);
    let summary = store::backup(&settings.storage, &target, force, &mut |p| line.update(p))?;
    line.finish();
    let total = started.elapsed().as_secs_f64();
    let copied = line.copied_after.map_or(total, |d| d.as_secs_f64());
    println!(
        "backup: {} -> {} ({:.1} MB) in {total:.1}s (copy {copied:.1}s, verify {:.1}s), \
         verified (integrity_check ok)",
        settings.storage.path.display(),
        target.display(),
        summary.bytes as f64 / 1e6,
        total - copied
    );
    print_summary(&summary);
    Ok(())
}

/// Removes what interrupted backups left beside `target` and says so. A failure here only
/// warns: the backup itself does not depend on it.
fn remove_stale_temporaries(target: &Path) {
    match store::backup::remove_stale_temporaries(target) {
        Ok(removed) => {
            for t in removed {
                println!(
                    "backup: removed {} ({:.1} MB), left by an interrupted backup or restore \
                     (process {}, no longer running)",
                    t.path.display(),
                    t.bytes as f64 / 1e6,
                    t.pid
                );
            }
        }
        Err(e) => eprintln!("backup: could not look for stale temporary files: {e}"),
    }
}

/// The copy's contents as `restore` and `backup` both print them.
pub(super) fn print_summary(summary: &CopySummary) {
    let states: Vec<String> = summary
        .messages_by_state
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    println!(
        "  schema version {}; messages {} ({}); orders {}; dead letters {}",
        summary.schema_version,
        summary.messages(),
        if states.is_empty() {
            "none".to_string()
        } else {
            states.join(", ")
        },
        summary.orders,
        summary.dead_letters()
    );
}

/// `backup: 51200/262144 pages (19.5%), 48.3 MB/s` on stderr, at most once a second.
struct ProgressLine {
    started: Instant,
    last_print: Option<Instant>,
    last: Option<BackupProgress>,
    printed: Option<BackupProgress>,
    /// When the last page was copied (the rest is verification).
    copied_after: Option<Duration>,
}

impl ProgressLine {
    fn new(started: Instant) -> ProgressLine {
        ProgressLine {
            started,
            last_print: None,
            last: None,
            printed: None,
            copied_after: None,
        }
    }

    fn update(&mut self, p: BackupProgress) {
        self.last = Some(p);
        if p.pages_done == p.pages_total && self.copied_after.is_none() {
            self.copied_after = Some(self.started.elapsed());
        }
        if self
            .last_print
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY)
        {
            self.last_print = Some(Instant::now());
            self.print(p);
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.last.filter(|p| self.printed != Some(*p)) {
            self.print(p);
        }
    }

    fn print(&mut self, p: BackupProgress) {
        self.printed = Some(p);
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let mb = p.pages_done as f64 * f64::from(p.page_size) / 1e6;
        let _ = writeln!(
            std::io::stderr(),
            "backup: {}/{} pages ({:.1}%), {:.1} MB/s",
            p.pages_done,
            p.pages_total,
            p.pages_done as f64 * 100.0 / p.pages_total.max(1) as f64,
            mb / secs
        );
    }
}
