//! The PostgreSQL backend (cargo feature `postgres`): several hookvault nodes share one
//! database. Each node keeps the SQLite backend's shape — one write connection owned by the
//! writer thread (group commit: one transaction per batch), a small pool of read connections —
//! and adds what sharing needs: claims with `FOR UPDATE SKIP LOCKED` and leases (owner node,
//! expiry on the database's clock), per-node counter rows summed on read, a heartbeat table of
//! live nodes, retention under an advisory lock, and events to every node by `LISTEN/NOTIFY`.
//! See docs/cluster.md.
//!
//! The `postgres` crate runs tokio-postgres on an internal current-thread runtime; that
//! runtime exists only in builds with this feature, and only behind these blocking calls.

mod leader;
mod listen;
mod read;
pub(crate) mod schema;
mod write;

use std::time::Duration;

use postgres::types::Type;
use postgres::{Client, Config, NoTls};

pub use leader::AdvisoryLeader;
pub use listen::run as listen;
pub use read::PostgresReader;
pub use write::{PostgresBackend, PostgresWriter};

use super::error::StoreError;
use super::sql::{Cell, Row};

/// The `LISTEN/NOTIFY` channel carrying committed events between nodes.
pub const EVENTS_CHANNEL: &str = "hookvault_events";

/// What a node needs to open the shared database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub url: String,
    /// This node's name in leases, counters and the node list.
    pub node: String,
    /// How long a claim holds a message before another node may take it over.
    pub lease: Duration,
}

/// Connects, migrates (under an advisory lock, so several nodes may start at once) and opens
/// the write connection and `read_connections` read connections.
pub fn open(
    options: &PostgresOptions,
    read_connections: usize,
) -> Result<(PostgresWriter, PostgresReader), StoreError> {
    let config = config(&options.url, &options.node)?;
    let mut client = connect(&config)?;
    schema::migrate(&mut client)?;
    let writer = PostgresWriter::new(PostgresBackend::new(client, config.clone(), options));
    let mut readers = Vec::with_capacity(read_connections.max(1));
    for _ in 0..read_connections.max(1) {
        readers.push(connect(&config)?);
    }
    Ok((writer, PostgresReader::new(config, readers)))
}

/// Parses `url`; a password missing from it comes from `PGPASSWORD`, as with `psql`.
pub fn config(url: &str, node: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|e| {
        StoreError::Other(format!(
            "storage.url {}: {e}",
            crate::settings::mask_url_password(url)
        ))
    })?;
    if config.get_password().is_none() {
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            config.password(pw);
        }
    }
    config.application_name(&format!("hookvault {node}"));
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(3));
    }
    Ok(config)
}

pub fn connect(config: &Config) -> Result<Client, StoreError> {
    config.connect(NoTls).map_err(|e| {
        let hosts = format!("{:?}", config.get_hosts());
        StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL ({hosts}, database {:?}): {e}",
            config.get_dbname().unwrap_or("(default)")
        ))
    })
}

/// A result row as cells (see [`Row`]), by each column's type, for what is read above the
/// backend.
pub(crate) fn cells(r: &postgres::Row) -> Result<Row, StoreError> {
    let cells = r
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = c.type_();
            let cell = if *ty == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)
                    .map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into())))
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)
                    .map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into())))
            } else if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)
                    .map(|v| v.map_or(Cell::Null, Cell::Int))
            } else if *ty == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)
                    .map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into())))
            } else if *ty == Type::BYTEA {
                r.try_get::<_, Option<Vec<u8>>>(i)
                    .map(|v| v.map_or(Cell::Null, Cell::Blob))
            } else {
                r.try_get::<_, Option<String>>(i)
                    .map(|v| v.map_or(Cell::Null, Cell::Text))
            };
            cell.map_err(pg_err)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Row(cells))
}

/// Sorts a PostgreSQL failure into the storage error kinds by its SQLSTATE class.
pub(crate) fn pg_err(e: postgres::Error) -> StoreError {
    // The server's own message (with its detail) says more than the client's summary.
    let Some(db) = e.as_db_error() else {
        // No answer from the server: the connection is gone or broke.
        return StoreError::Unavailable(format!("PostgreSQL connection: {e}"));
    };
    let text = format!("PostgreSQL: {db}");
    match db.code().code() {
        "53100" => StoreError::DiskFull(text),
        "40001" | "40P01" | "55P03" | "57014" => StoreError::Busy(text),
        "57P01" | "57P02" | "57P03" | "53300" => StoreError::Unavailable(text),
        c if c.starts_with("08") => StoreError::Unavailable(text),
        c if c.starts_with("XX") => StoreError::Corrupt(text),
        _ => StoreError::Other(text),
    }
}

/// The database's clock in Unix milliseconds: leases and heartbeats are compared on one clock,
/// whatever the nodes' clocks say.
pub(crate) const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
