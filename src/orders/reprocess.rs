//! `hookvault reprocess` (placeholder until the parser lands).
use crate::config::Sources;
use crate::error::{Error, Result};

pub fn run(_sources: Sources, _since: Option<String>, _status: Option<String>) -> Result<()> {
    Err(Error::Other("reprocess is not available yet".into()))
}
