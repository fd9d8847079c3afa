//! The commands of the `hookvault` binary, one per file. Each takes the configuration sources
//! the command line named and loads the settings itself, the same way for every command.

pub mod backup;
pub mod check;
pub mod check_config;
pub mod logging;
pub mod migrate;
pub mod reprocess;
pub mod restore;
pub mod schema;
pub mod serve;
pub mod sign;

use crate::base::error::Result;
use crate::settings::{Settings, Sources};

/// Settings from the named sources plus the process environment (`HOOKVAULT_*`).
pub(crate) fn load_settings(sources: Sources) -> Result<Settings> {
    Settings::load(&sources.with_process_env())
}
