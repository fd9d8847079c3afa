//! What the integration tests and the load tester's test reach inside the crate, named in
//! one place: a service run in-process with a processor of the test's own (and the error a
//! refused start returns), the store opened directly (with faults injected, and a thread
//! group to listen with), the order parser's parts, the event broadcaster and the route
//! table. The binary needs none of it: it calls [`crate::run`].

pub use crate::app::service::{Service, StopSummary};
pub use crate::base::error::{Error, Result};
pub use crate::base::lifecycle::Background;
pub use crate::base::time::now_ms;
pub use crate::store::Effect;
pub use crate::work::queue::{Job, JsonCheckProcessor, ProcessError, Processor};
pub use crate::work::stats::StatsSnapshot;

/// The store below the writer thread: opened, written and read directly.
pub mod store {
    pub use crate::store::retention::{Swept, BATCH as RETENTION_BATCH};
    pub use crate::store::{
        check, open, open_node, DeadLetterQuery, Duty, FailAt, FaultKind, Faults, Leadership,
        Lease, LogQuery, MessageState, NewDelivery, NewMessage, NodeIdentity, OpOutcome,
        OpenedStore, Order, OrderChange, ReadStore, RemoteEvent, RetentionSweeper, StoreError,
        TargetKind, WriteOp, WriteStore,
    };

    /// The PostgreSQL backend's own handles.
    #[cfg(feature = "postgres")]
    pub mod postgres {
        pub use crate::store::postgres::{
            config, listen, open, AdvisoryLeader, PostgresOptions, PostgresReader, PostgresWriter,
        };
    }
}

/// The order parser's parts, for property and fixture tests.
pub mod orders {
    pub use crate::work::orders::limits::{MAX_VALUE_BYTES, TRUNCATED};
    pub use crate::work::orders::price::parse_price;
    pub use crate::work::orders::{OrderParser, ParseError};

    /// Discord markdown removal.
    pub mod markdown {
        pub use crate::work::orders::markdown::clean;
    }
}

/// The WebSocket event stream without a service around it.
pub mod events {
    pub use crate::work::events::{Broadcaster, Event, EventSink};
}

/// The HTTP API's route table and the dashboard page.
pub mod api {
    pub use crate::api::dashboard::render as render_dashboard;
    pub use crate::api::ROUTES;
}
