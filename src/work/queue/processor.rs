//! The seam between the queue and what a message means. The order parser plugs in here; tests
//! plug in processors that fail, stall or panic on purpose.

use super::Job;
use crate::store::Effect;

/// Permanent errors go to dead letters at once; transient ones are retried with backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessError {
    Permanent(String),
    Transient(String),
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessError::Permanent(m) | ProcessError::Transient(m) => f.write_str(m),
        }
    }
}

pub trait Processor: Send + Sync {
    /// Must not write anything itself: its effect is returned and committed by the writer in
    /// the same transaction as the message's new state.
    fn process(&self, job: &Job) -> Result<Effect, ProcessError>;
}

/// The minimal processor: the body must be JSON. Used by tools and tests that do not care
/// about orders.
pub struct JsonCheckProcessor;

impl Processor for JsonCheckProcessor {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        serde_json::from_slice::<serde::de::IgnoredAny>(&job.payload)
            .map(|_| Effect::Nothing)
            .map_err(|e| ProcessError::Permanent(format!("invalid JSON: {e}")))
    }
}
