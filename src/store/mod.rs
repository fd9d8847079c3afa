//! Storage behind a narrow seam, at the bottom of the crate: it imports nothing from the
//! layers that use it (queue, events, stats, orders, http), so a change there never ripples
//! down here. The writer thread is the only caller of [`WriteStore`] and reports each commit
//! to a [`CommitObserver`] (the `pipeline` above wires it to the workers and the event
//! stream); HTTP handlers, the feeder and the stats page use [`ReadStore`]. [`open`] (and
//! [`open_node`] for a serving node) is the one way in and nothing outside this module speaks
//! SQL: `sqlite/` is the embedded backend, `postgres/` (cargo feature `postgres`) the one
//! several nodes share, with leases (docs/cluster.md).

pub mod backend;
pub mod backup;
pub mod consistency;
pub mod delivery;
mod delivery_reads;
pub mod error;
pub mod faults;
pub mod instance_lock;
pub mod leadership;
#[cfg(feature = "postgres")]
pub mod migrate;
pub mod model;
pub mod observer;
pub mod order;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod retention;
mod rows;
mod seam;
pub mod sql;
mod sql_store;
mod sqlite;
mod sqlite_file;
mod state_machine;
pub(crate) mod statements;
pub mod writer;

pub use backend::{open, open_node, Cluster, NodeIdentity, OpenedStore};
pub use backup::{backup, restore};
pub use consistency::ConsistencyReport;
pub use delivery::*;
pub use delivery_reads::{
    dead_targets, deliveries, deliveries_by_state, deliveries_of_message, owed_by_label,
    owed_targets,
};
pub use error::{StoreError, StoreResult};
pub use faults::{FailAt, FaultKind, Faults};
pub use leadership::{Duty, Leadership, SingleNode};
pub use model::*;
pub use observer::CommitObserver;
pub use order::Order;
pub use retention::RetentionSweeper;
pub use seam::{ReadStore, WriteStore};
pub use sqlite_file::check;
pub use writer::{Writer, WriterHandle};
