//! `hookvault migrate --from sqlite:PATH --to postgres://...`: copies a SQLite database into
//! PostgreSQL (see `docs/cluster.md`). Progress goes to stderr, the per-table verification to
//! stdout; a count that does not match is a failure.

use std::path::Path;

use crate::base::error::{Error, Result};

#[cfg(feature = "postgres")]
pub fn run(from: &Path, to: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let counts = crate::store::migrate::migrate(from, to, &mut std::io::stderr())?;
    println!(
        "{:<18} {:>10} {:>10} {:>10}  check",
        "table", "sqlite", "copied", "postgres"
    );
    for c in &counts {
        println!(
            "{:<18} {:>10} {:>10} {:>10}  {}",
            c.table,
            c.source,
            c.copied,
            c.target,
            if c.verified() { "ok" } else { "MISMATCH" }
        );
    }
    if let Some(bad) = counts.iter().find(|c| !c.verified()) {
        return Err(Error::Storage(crate::base::error::StoreError::Other(
            format!(
                "table {}: {} rows in SQLite but {} in PostgreSQL after the copy",
                bad.table, bad.source, bad.target
            ),
        )));
    }
    println!(
        "migrated {} into {} in {:.1}s; point storage.backend = \"postgres\" and storage.url at it",
        from.display(),
        crate::settings::mask_url_password(to),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(not(feature = "postgres"))]
pub fn run(_from: &Path, _to: &str) -> Result<()> {
    Err(Error::Config(
        "migrate needs a hookvault built with the PostgreSQL backend: \
         cargo build --release --features postgres (see docs/cluster.md)"
            .into(),
    ))
}
