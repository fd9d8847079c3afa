//! `[[alerts]]` (where alerts go: one table per target) and `[alerting]` (the thresholds they
//! share), and how a target's URL, which holds its secret, may be shown.

use serde::{Deserialize, Serialize};

/// How an alert is formatted for its target.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A Discord channel webhook: an embed within Discord's limits.
    Discord,
    /// A Slack incoming webhook: `text`.
    Slack,
    /// An ntfy topic URL: the text as the body, `Title`, `Priority` and `Tags` headers.
    Ntfy,
    /// Any endpoint taking a JSON POST (`event`, `severity`, `summary`, `details`, `node`, `at`).
    Webhook,
}

/// What an alert target can ask to hear about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The stats `status` leaves `healthy`, changes, and comes back.
    Status,
    /// New dead letters.
    DeadLetter,
    /// The oldest queued message is older than `alerting.backlog_age_s`.
    Backlog,
    /// A relay target is dead or failing for `alerting.relay_failing_s`.
    Relay,
    /// Free disk space under `alerting.disk_free_pct`, or the database over
    /// `alerting.db_max_bytes`.
    Disk,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 5] = [
        AlertEvent::Status,
        AlertEvent::DeadLetter,
        AlertEvent::Backlog,
        AlertEvent::Relay,
        AlertEvent::Disk,
    ];

    /// The name the configuration and the alerts use.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Status => "status",
            AlertEvent::DeadLetter => "dead_letter",
            AlertEvent::Backlog => "backlog",
            AlertEvent::Relay => "relay",
            AlertEvent::Disk => "disk",
        }
    }
}

/// One `[[alerts]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertTarget {
    /// `[a-z0-9_-]{1,32}`, unique: names the target in stats and logs (its URL never does).
    pub name: String,
    pub kind: AlertKind,
    /// Holds a secret (a webhook token, an ntfy topic): shown masked everywhere.
    pub url: String,
    #[serde(default = "all_alert_events")]
    pub events: Vec<AlertEvent>,
    /// Per event kind: one alert, then at most one digest this often.
    #[serde(default = "default_min_interval_s")]
    pub min_interval_s: u64,
}

fn all_alert_events() -> Vec<AlertEvent> {
    AlertEvent::ALL.to_vec()
}

fn default_min_interval_s() -> u64 {
    300
}

/// `[alerting]`: thresholds for the alert conditions. (`[alerts]` cannot hold them: in TOML
/// `alerts` is already the array of targets.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingSettings {
    /// `backlog`: the oldest queued message is older than this.
    pub backlog_age_s: u64,
    /// `relay`: a relay target failing (not dead) this long.
    pub relay_failing_s: u64,
    /// `disk`: free space on the database's file system under this percentage.
    pub disk_free_pct: f64,
    /// `disk`: the database larger than this many bytes (unset: no size limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_max_bytes: Option<u64>,
    /// How often the conditions are evaluated.
    pub check_interval_s: u64,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            backlog_age_s: 600,
            relay_failing_s: 900,
            disk_free_pct: 10.0,
            db_max_bytes: None,
            check_interval_s: 5,
        }
    }
}

/// An alert URL is `http://` or `https://` with a host; what it says is not shown (it holds
/// the secret).
pub(super) fn check_alert_url(url: &str) -> std::result::Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) || url.chars().any(char::is_control) {
        return Err("is not a URL like https://host/path".into());
    }
    Ok(())
}

/// An alert URL as it may be shown: scheme and host, the rest (the token, the topic, any
/// credentials before the host) masked: `https://discord.com/********`.
pub fn mask_alert_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "********".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/********")
}
