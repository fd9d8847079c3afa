//! Live figures for the stats endpoint, metrics and the event stream. Totals start from the
//! durable counters at boot and move only after the commits they describe, so they agree with
//! the database and answering never scans a table.

pub mod health;
pub mod latency;
pub mod live;
pub mod metrics;
pub mod rate;

pub use latency::LatencyHistogram;
pub use live::LiveStats;
pub use rate::RateWindow;
pub mod snapshot;
pub use snapshot::{QueueView, StatsSnapshot};
