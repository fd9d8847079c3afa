//! The settings layer: what the operator configured, checked, and nothing that runs. It sits
//! on the ground floor's `base` alone, so every layer above (the store included) may read it.
//!
//! [`Settings`] holds one struct per section ([`sections`]; `[[alerts]]` and `[alerting]` in
//! [`alerts`]), merged from defaults, file, environment and flags in [`load`]. The `[[sources]]`
//! tables and their signature schemes are [`sources`].

pub mod alerts;
pub mod load;
pub mod sections;
pub mod sources;

use serde::{Deserialize, Serialize};

pub use alerts::{mask_alert_url, AlertEvent, AlertKind, AlertTarget, AlertingSettings};
pub use load::{mask_url_password, Sources, ENV_PREFIX};
pub use sections::{
    IngestSettings, LogSettings, NodeSettings, OrdersSettings, QueueSettings, RelaySettings,
    ServerSettings, StorageSettings, WebsocketSettings, BACKENDS,
};
use sources::SourceSettings;

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
    /// scheme (`src/sources/`); none means the built-in `orders` source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSettings>,
    /// `[[alerts]]`: where alerts go (see `src/alerts/`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertTarget>,
    /// `[alerting]`: the thresholds every alert target shares.
    pub alerting: AlertingSettings,
}
