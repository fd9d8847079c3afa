//! Orders: the processor that turns Discord-style webhooks into orders.
pub mod model;
pub mod reprocess;
pub use model::Order;

use std::sync::Arc;

/// The processor `serve` runs. (Placeholder until the parser lands: checks JSON only.)
pub fn processor_for(
    _settings: &crate::config::Settings,
) -> crate::error::Result<Arc<dyn crate::queue::Processor>> {
    Ok(Arc::new(crate::queue::JsonCheckProcessor))
}
