//! `hookvault check-config`: validate the configuration and print the effective settings, so
//! an operator sees what `serve` would run with before running it.

use super::load_settings;
use crate::config::Sources;
use crate::error::Result;

pub fn run(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    crate::service::sources_of(&settings)?;
    println!("# configuration is valid; effective settings:");
    print!("{}", settings.to_display_toml());
    Ok(())
}
