//! The work side: a bounded in-memory channel in front of a fixed pool of OS-thread workers.
//! The database is the queue; the channel is only the fast path. Whatever does not fit in the
//! channel stays `queued` on disk and the [`Feeder`] hands it over when there is room.

pub mod backoff;
pub mod bodies;
pub mod by_source;
pub mod dispatch;
pub mod feeder;
pub mod fresh_bodies;
pub mod lease;
pub mod processor;
pub mod worker_pool;

pub use crate::store::{Job, QueuedJob};
pub use bodies::{BodyLoader, Loaded};
pub use by_source::BySource;
pub use dispatch::Dispatcher;
pub use feeder::Feeder;
pub use lease::{LeaseKeeper, LeaseKeeping};
pub use processor::{JsonCheckProcessor, ProcessError, Processor};
pub use worker_pool::{SharedClaims, WorkerPool, WorkerSettings};
