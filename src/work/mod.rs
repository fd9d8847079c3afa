//! The work layer: what happens to a stored message, above the store and below the API.
//!
//! Bottom to top (each imports only the ones before it): [`events`] (the WebSocket event
//! stream, best effort) and [`stats`] (live figures, the readiness rule); [`queue`] (the
//! dispatcher, feeder, worker pool and leases); [`orders`] (the order parser and its
//! processor) and [`relay`] (deliveries to other HTTP targets); [`alerts`] (conditions told
//! through the relay); [`pipeline`] (what a commit sets in motion, wired to all of them).

pub mod alerts;
pub mod events;
pub mod orders;
pub mod pipeline;
pub mod queue;
pub mod relay;
pub mod stats;
