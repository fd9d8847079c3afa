//! Each source names what its messages go through: `orders` (the processor the service runs,
//! the order parser by default) or `store` (kept as received and marked processed). Jobs carry
//! the path they came in on, which names their source.

use std::sync::Arc;

use super::{Job, ProcessError, Processor};
use crate::settings::sources::{ProcessorKind, SourceList};
use crate::store::Effect;

pub struct BySource {
    inner: Arc<dyn Processor>,
    sources: Arc<SourceList>,
}

impl BySource {
    pub fn new(inner: Arc<dyn Processor>, sources: Arc<SourceList>) -> BySource {
        BySource { inner, sources }
    }
}

impl Processor for BySource {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        // A message whose source is no longer configured keeps going through the main
        // processor, as everything did before sources.
        match self.sources.by_path(&job.path).map(|s| s.processor) {
            Some(ProcessorKind::Store) => Ok(Effect::Nothing),
            _ => self.inner.process(job),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::sources::SourceSettings;
    use crate::work::queue::JsonCheckProcessor;

    #[test]
    fn a_store_source_keeps_what_the_main_processor_would_refuse() {
        let tables: Vec<SourceSettings> = vec![
            toml::from_str("name = \"orders\"").unwrap(),
            toml::from_str("name = \"raw\"").unwrap(),
        ];
        let sources = Arc::new(SourceList::new(&tables, None, 1000).unwrap());
        let p = BySource::new(Arc::new(JsonCheckProcessor), sources);
        let job = |path: &str| Job {
            id: 1,
            path: path.into(),
            payload: b"not json".to_vec(),
            attempts: 0,
        };
        assert!(p.process(&job("/api/v2/webhooks/in/raw")).is_ok());
        assert!(p.process(&job("/api/v2/webhooks/orders")).is_err());
        assert!(p.process(&job("/gone")).is_err());
    }
}
