//! The settings layer: what the operator configured, checked, and nothing that runs. It sits
//! on the ground floor's `base` alone, so every layer above (the store included) may read it.
//!
//! [`Settings`] holds one struct per section ([`sections`]; `[[alerts]]` and `[alerting]` in
//! [`alerts`]), merged from defaults, file, environment and flags and checked in [`load`].
//! The `[[sources]]` tables and their signature schemes are [`sources`].

pub mod alerts;
pub mod load;
pub mod sections;
pub mod sources;

pub use alerts::{mask_alert_url, AlertEvent, AlertKind, AlertTarget, AlertingSettings};
pub use load::{mask_url_password, Sources, ENV_PREFIX};
pub use sections::{RelaySettings, ServerSettings, Settings, StorageSettings};
