//! `hookvault check-config`: validate the configuration and print the effective settings, so
//! an operator sees what `serve` would run with before running it.

use super::load_settings;
use crate::base::error::Result;
use crate::edge::Mode;
use crate::settings::Sources;

pub fn run(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    crate::app::service::sources_of(&settings)?;
    println!("# configuration is valid; effective settings:");
    print!("{}", settings.to_display_toml());
    let (mode, why) = Mode::resolve(&settings.server);
    println!("# effective edge mode: {} ({why})", mode.name());
    Ok(())
}
