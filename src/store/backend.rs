//! The one way to open storage: the backend `storage.backend` names.

use std::sync::Arc;
use std::time::Duration;

use super::sql::SqlBackend;
use super::sqlite;
use crate::base::lifecycle::{Background, Stop};
use crate::settings::StorageSettings;
use crate::store::error::{StoreError, StoreResult};
use crate::store::faults::{Faults, FaultyBackend};
use crate::store::leadership::{Duty, Leadership};
use crate::store::model::RemoteEvent;
use crate::store::seam::{ReadStore, WriteStore};
use crate::store::sql_store::SqlStore;

/// Read connections kept open: the feeder and one HTTP handler at a time without opening more
/// (the pool opens extra ones when all are busy).
const READ_CONNECTIONS: usize = 2;

/// Who this process is to a database other nodes may share: its name in leases, counters and
/// the node list, and how long its claims hold.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub id: String,
    pub lease: Duration,
}

pub struct OpenedStore {
    pub writer: Box<dyn WriteStore>,
    pub reader: Arc<dyn ReadStore>,
    /// Set when other nodes may share the database (PostgreSQL): claims must wait for the
    /// database's answer, leases must be kept, totals and events come from every node.
    pub cluster: Option<Cluster>,
}

/// What a node sharing its database needs beyond the two stores: its name and lease, and
/// how to hear what the other nodes commit. Only a backend that several nodes share makes one.
pub struct Cluster {
    pub node: String,
    pub lease: Duration,
    /// Receives other nodes' events until its `Stop` (the listener thread's body).
    listen: Box<dyn FnOnce(Deliver, Stop) + Send>,
    elect: Box<dyn Fn(Duty) -> Box<dyn Leadership> + Send + Sync>,
}

/// Where the listener hands each event another node committed (on its own thread).
pub type Deliver = Box<dyn Fn(RemoteEvent) + Send>;

impl Cluster {
    /// How this node learns whether it leads `duty` (one node of the cluster at a time).
    pub fn leadership(&self, duty: Duty) -> Box<dyn Leadership> {
        (self.elect)(duty)
    }

    /// Starts receiving the events other nodes commit; `deliver` runs on the listener thread.
    pub fn listen(self, deliver: Deliver) -> std::io::Result<Background> {
        let mut listener = Background::new("cluster-events");
        let listen = self.listen;
        listener.spawn("pg-listen", move |stop| listen(deliver, stop))?;
        Ok(listener)
    }
}

/// Opens the storage `settings` point at (creating and migrating it if needed) for a command
/// that writes directly (`reprocess`): the write side and the read side.
pub fn open(settings: &StorageSettings) -> StoreResult<(Box<dyn WriteStore>, Arc<dyn ReadStore>)> {
    let identity = NodeIdentity {
        id: format!("command-{}", std::process::id()),
        lease: Duration::from_secs(30),
    };
    let opened = open_node(settings, &identity, None)?;
    Ok((opened.writer, opened.reader))
}

/// The write side over `backend`, its transactions failing as `faults` say when given.
fn write_store<B: SqlBackend + 'static>(backend: B, faults: Option<Faults>) -> Box<dyn WriteStore> {
    match faults {
        Some(faults) => Box::new(SqlStore::new(FaultyBackend::new(backend, faults))),
        None => Box::new(SqlStore::new(backend)),
    }
}

/// Opens the storage for a serving node. On SQLite the write side holds the database's
/// `InstanceLock`: while it lives, another `open` of the same database
/// (in this process or another) fails with [`StoreError::InUse`]. With `faults`, the write
/// side's transactions fail as they say (tests only; see [`Faults`]).
pub fn open_node(
    settings: &StorageSettings,
    node: &NodeIdentity,
    faults: Option<Faults>,
) -> StoreResult<OpenedStore> {
    match settings.backend.as_str() {
        "sqlite" => {
            let (writer, reader) = sqlite::open(&settings.path, READ_CONNECTIONS)?;
            Ok(OpenedStore {
                writer: write_store(writer.into_backend(), faults),
                reader: Arc::new(reader),
                cluster: None,
            })
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let options = super::postgres::PostgresOptions {
                url: settings.url.clone().unwrap_or_default(),
                node: node.id.clone(),
                lease: node.lease,
            };
            let (writer, reader) = super::postgres::open(&options, READ_CONNECTIONS)?;
            let config = super::postgres::config(&options.url, &options.node)?;
            let node = options.node.clone();
            let elect_config = config.clone();
            Ok(OpenedStore {
                writer: write_store(writer.into_backend(), faults),
                reader: Arc::new(reader),
                cluster: Some(Cluster {
                    node: options.node,
                    lease: options.lease,
                    listen: Box::new(move |deliver, stop| {
                        super::postgres::listen(config, node, deliver, stop)
                    }),
                    elect: Box::new(move |duty| {
                        Box::new(super::postgres::AdvisoryLeader::new(
                            elect_config.clone(),
                            duty,
                        ))
                    }),
                }),
            })
        }
        other => {
            let _ = (node, faults);
            Err(StoreError::Other(format!(
                "storage.backend {other:?} is not available in this build (see docs/cluster.md)"
            )))
        }
    }
}
