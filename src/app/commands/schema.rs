//! `hookvault schema [--config FILE] [--db PATH]`: the schema version this binary runs, the
//! database's, and what `serve` would do with it, as `key=value` lines a script can read
//! (`deploy/deploy.sh` asks a new binary before switching to it, and takes a backup when the
//! answer is `on_serve=migrate`). It only reads; nothing is created or changed.

use super::load_settings;
use crate::base::error::Result;
use crate::settings::Sources;
use crate::store::backup::{schema_report, SchemaReport};

pub fn run(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    let report = schema_report(&settings.storage)?;
    print!(
        "{}",
        render(&settings.storage.path.display().to_string(), &report)
    );
    Ok(())
}

/// The report as printed: one `key=value` per line, `database_schema` empty when there is no
/// database yet.
pub fn render(path: &str, report: &SchemaReport) -> String {
    format!(
        "binary_schema={}\ndatabase_schema={}\ndatabase={path}\non_serve={}\n",
        report.binary,
        report.database.map_or(String::new(), |v| v.to_string()),
        report.plan.word()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backup::SchemaPlan;

    #[test]
    fn the_report_is_one_key_value_pair_a_line() {
        let report = SchemaReport {
            binary: 3,
            database: Some(2),
            plan: SchemaPlan::Migrate,
        };
        assert_eq!(
            render("/var/lib/hookvault/hookvault.db", &report),
            "binary_schema=3\ndatabase_schema=2\ndatabase=/var/lib/hookvault/hookvault.db\non_serve=migrate\n"
        );
        let none = SchemaReport {
            binary: 2,
            database: None,
            plan: SchemaPlan::Create,
        };
        assert!(render("x.db", &none).contains("database_schema=\n"));
    }
}
