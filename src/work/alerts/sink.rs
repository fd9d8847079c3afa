//! Where alerts go: the relay's durable deliveries (so an alert survives a restart, waits out
//! a 429 and is retried). Behind a trait so the checks never depend on how it is sent.

use super::format::Payload;
use crate::settings::AlertTarget;

pub trait AlertSink: Send + Sync {
    /// Makes the delivery of `payload` to `target` durable and returns its id; an error says
    /// why not (it names the target, never its URL).
    fn enqueue(&self, target: &AlertTarget, payload: Payload) -> Result<i64, String>;
}
