//! [`Settings`] and one struct per `[section]` of it, with their built-in defaults. What a
//! value means is said at its field; what values are allowed, in `Settings::validate`
//! (`load.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::alerts::{AlertTarget, AlertingSettings};
use super::sources::SourceSettings;

/// The whole configuration, one field per section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub ingest: IngestSettings,
    pub queue: QueueSettings,
    pub storage: StorageSettings,
    pub node: NodeSettings,
    pub websocket: WebsocketSettings,
    pub log: LogSettings,
    pub orders: OrdersSettings,
    pub relay: RelaySettings,
    /// `[[sources]]`: the ingest paths, each with its own token, processor and signature
    /// scheme (`src/settings/sources/`); none means the built-in `orders` source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSettings>,
    /// `[[alerts]]`: where alerts go (see `src/work/alerts/`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertTarget>,
    /// `[alerting]`: the thresholds every alert target shares.
    pub alerting: AlertingSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub max_body_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Threads that take requests from the HTTP listener. Each one waits for its group commit,
    /// so this bounds how many acknowledgements one fsync can cover.
    pub handler_threads: usize,
    /// A connection that sends nothing for this long (idle keep-alive, or a stalled request)
    /// is closed: each open connection holds a thread.
    pub idle_timeout_s: u64,
    /// A request's head and body must have arrived this long after its first byte, or it is
    /// answered 408: a sender trickling its body cannot hold a connection for longer.
    pub body_timeout_s: u64,
    /// Host names (or addresses) besides the loopback ones that a request may name in `Host`
    /// when it is let in as a loopback admin (no token); against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` names the client the
    /// audit trail records.
    pub trusted_proxies: Vec<String>,
    /// Who reads requests off the public port: `auto` (the edge gate unless `listen` is a
    /// loopback address), `gate` or `direct` (tiny_http itself); see `src/edge/`.
    pub edge: String,
    /// Gate mode: simultaneous client connections; one more is answered 503.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Refused webhooks kept in the rejections log; older rows are deleted as new ones come.
    pub rejections_kept: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            token: None,
            rejections_kept: 1_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    pub workers: usize,
    pub capacity: usize,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_backlog: u64,
    pub shutdown_timeout_s: u64,
    /// How long a `processing` message stays leased to this node without a renewal; see
    /// `src/work/queue/lease.rs`.
    pub lease_s: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// Names this node in leases, logs and (several nodes on PostgreSQL) the stats' node
    /// list; unset means [`Settings::node_id`](super::Settings::node_id)'s default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// `sqlite` (embedded, one node) or `postgres` (several nodes; cargo feature `postgres`).
    pub backend: String,
    pub path: PathBuf,
    /// The PostgreSQL connection URL (`postgres://user[:password]@host[:port]/db`); the
    /// password may come from `PGPASSWORD` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub retention_days: u32,
}

/// Storage backends a configuration may name.
pub const BACKENDS: &[&str] = &["sqlite", "postgres"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebsocketSettings {
    /// Address of the live event stream; `"off"` disables it.
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersSettings {
    /// ISO 4217 code assumed for a price written without a currency symbol or code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_currency: Option<String>,
    /// Extra labels per order field, e.g. `order_number = ["Bestellnummer"]`.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// The relay of stored messages to Discord webhooks and `forward` targets (docs/relay.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Where `POST /api/webhooks/{id}/{token}` is relayed to (tests point it at a fake).
    pub discord_base: String,
    /// Discord webhook ids relayed; empty: none (`403 relay_not_allowed`); `["*"]`: any.
    pub discord_webhook_ids: Vec<String>,
    /// Attempts per delivery before it is dead (`5xx`, timeouts, connection errors).
    pub max_attempts: u32,
    /// Per request.
    pub timeout_s: u64,
    /// `?wait=true`: how long the Discord path waits for Discord's own answer.
    pub wait_ms: u64,
    /// Requests in flight per target.
    pub concurrency: u32,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            discord_base: "https://discord.com".into(),
            discord_webhook_ids: Vec::new(),
            max_attempts: 10,
            timeout_s: 10,
            wait_ms: 5_000,
            concurrency: 1,
        }
    }
}

/// Gate mode costs two threads per client connection at most (the gate's, and tiny_http's
/// once it has sent a request); with the ~60 fixed threads this fits the shipped unit's
/// `TasksMax=512`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 200;

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8001".into(),
            max_body_bytes: 1_048_576,
            admin_token: None,
            handler_threads: 32,
            idle_timeout_s: 60,
            body_timeout_s: 10,
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            edge: "auto".into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            workers: 10,
            capacity: 10_000,
            max_retries: 3,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            max_backlog: 1_000_000,
            shutdown_timeout_s: 20,
            lease_s: 30,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            backend: "sqlite".into(),
            path: PathBuf::from("hookvault.db"),
            url: None,
            retention_days: 30,
        }
    }
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        WebsocketSettings {
            listen: "127.0.0.1:8002".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
        }
    }
}
