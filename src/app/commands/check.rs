//! `hookvault check [--repair]`: the durable counters against the tables and the state and
//! lease rules, one line per check, exit 0 when everything holds and 1 when not. `--repair`
//! first rebuilds the counters (and stray leases) from the tables, then checks again.
//!
//! Run it on a stopped service: the check itself reads one consistent snapshot either way,
//! but a running service keeps its own copy of the figures and would not see a repair.

use crate::base::error::Result;
use crate::settings::Settings;
use crate::store::{self, ConsistencyReport};

/// Exit code when a check fails.
pub const EXIT_INCONSISTENT: i32 = 1;

/// Runs the check (and the repair); prints the report on stdout; returns the exit code.
pub fn run(settings: &Settings, repair: bool) -> Result<i32> {
    let report = store::check(&settings.storage, repair)?;
    print!(
        "{}",
        render(&settings.storage.path.display().to_string(), &report)
    );
    Ok(if report.consistent() {
        0
    } else {
        EXIT_INCONSISTENT
    })
}

/// The report as printed: each check with `ok` or `MISMATCH` and its figures, what a repair
/// changed, and a last line with the verdict.
pub fn render(path: &str, report: &ConsistencyReport) -> String {
    let mut out = format!("hookvault check: {path}\n");
    for line in &report.repaired {
        out.push_str(&format!("repaired  {line}\n"));
    }
    for c in &report.checks {
        let relation = if c.at_least { "at least " } else { "" };
        if c.ok() {
            out.push_str(&format!("ok        {}: {}\n", c.name, c.found));
        } else {
            out.push_str(&format!(
                "MISMATCH  {}: expected {relation}{}, found {} ({})\n",
                c.name, c.expected, c.found, c.subject
            ));
        }
    }
    let bad = report.mismatches().count();
    if bad == 0 {
        out.push_str(&format!(
            "consistent: {} checks passed\n",
            report.checks.len()
        ));
    } else {
        out.push_str(&format!(
            "inconsistent: {bad} of {} checks failed{}\n",
            report.checks.len(),
            if report.repaired.is_empty() {
                "; `hookvault check --repair` rebuilds the counters from the tables"
            } else {
                ""
            }
        ));
    }
    out
}
