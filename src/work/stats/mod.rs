//! Live figures for the stats endpoint, metrics and the event stream. Totals start from the
//! durable counters at boot and move only after the commits they describe, so they agree with
//! the database and answering never scans a table.

pub mod cluster;
pub mod health;
pub mod latency;
pub mod live;
pub mod metrics;
pub mod outcomes;
pub mod queue_view;
pub mod rate;
pub mod relay;
pub mod snapshot;
pub mod sources;

pub use latency::LatencyHistogram;
pub use live::LiveStats;
pub use outcomes::RecentOutcomes;
pub use queue_view::QueueView;
pub use rate::RateWindow;
pub use relay::{RelayFigures, RelaySnapshot};
pub use snapshot::StatsSnapshot;
