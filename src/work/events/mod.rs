//! Live event stream: a WebSocket broadcaster that mirrors what the daemon is
//! doing (webhooks received, orders created, dead letters, periodic stats).
//!
//! The stream is strictly best-effort. Durability lives in the store; this
//! module exists for dashboards and humans, so every design choice here favours
//! "never slow down ingest or workers" over "never miss an event".

pub mod broadcaster;
pub mod event;

pub use broadcaster::{BoundEvents, Broadcaster, EventSink};
pub use event::Event;
