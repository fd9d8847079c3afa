//! `[[alerts]]` (where alerts go: one table per target) and `[alerting]` (the thresholds they
//! share), and how a target's URL, which holds its secret, may be shown.

use serde::{Deserialize, Serialize};

use super::Settings;
use crate::base::error::{Error, Result};

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
fn check_alert_url(url: &str) -> std::result::Result<(), String> {
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

impl Settings {
    /// `[[alerts]]` and `[alerting]`; a target is named by its position and name, never by
    /// its URL (which holds a secret).
    pub(super) fn validate_alerts(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("{key}: {why}")));
        let a = &self.alerting;
        if a.backlog_age_s == 0 {
            return bad("alerting.backlog_age_s", "must be at least 1 (seconds)");
        }
        if a.relay_failing_s == 0 {
            return bad("alerting.relay_failing_s", "must be at least 1 (seconds)");
        }
        if !(0.0..=100.0).contains(&a.disk_free_pct) {
            return bad("alerting.disk_free_pct", "must be between 0 and 100");
        }
        if a.db_max_bytes == Some(0) {
            return bad(
                "alerting.db_max_bytes",
                "must be at least 1; remove the key for no size limit",
            );
        }
        if !(1..=3600).contains(&a.check_interval_s) {
            return bad("alerting.check_interval_s", "must be between 1 and 3600");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in self.alerts.iter().enumerate() {
            let key = |k: &str| format!("alerts[{i}].{k}");
            let name_ok = !t.name.is_empty()
                && t.name.len() <= 32
                && t.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !name_ok {
                return bad(
                    &key("name"),
                    &format!("{:?} must be 1 to 32 of a-z, 0-9, - and _", t.name),
                );
            }
            if !names.insert(t.name.as_str()) {
                return bad(
                    &key("name"),
                    &format!("{:?} names two alert targets; names must differ", t.name),
                );
            }
            if let Err(why) = check_alert_url(&t.url) {
                return bad(&format!("alerts[{i}].url (target {:?})", t.name), &why);
            }
            if t.events.is_empty() {
                return bad(
                    &key("events"),
                    "is empty; list some of status, dead_letter, backlog, relay, disk \
                     (or remove the key for all of them)",
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(twice) = t.events.iter().find(|e| !seen.insert(**e)) {
                return bad(
                    &key("events"),
                    &format!("{:?} is listed twice", twice.as_str()),
                );
            }
            if !(1..=86_400).contains(&t.min_interval_s) {
                return bad(
                    &key("min_interval_s"),
                    "must be between 1 and 86400 (seconds)",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod alert_tests {
    use super::*;
    use crate::settings::Sources;
    use toml::Table;

    fn load_file(text: &str) -> Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(&Sources {
            file: Some(path),
            ..Sources::default()
        })
    }

    const TWO: &str = r#"
[alerting]
backlog_age_s = 120
[[alerts]]
name = "phone"
kind = "ntfy"
url = "https://ntfy.example/topic-s3cret"
min_interval_s = 60
[[alerts]]
name = "ops"
kind = "discord"
url = "https://discord.example/api/webhooks/1/tok-s3cret"
events = ["status", "dead_letter"]
"#;

    #[test]
    fn targets_and_thresholds_load_with_defaults() {
        let s = load_file(TWO).unwrap();
        assert_eq!(s.alerts.len(), 2);
        assert_eq!(s.alerts[0].kind, AlertKind::Ntfy);
        assert_eq!(s.alerts[0].events, AlertEvent::ALL.to_vec());
        assert_eq!(s.alerts[0].min_interval_s, 60);
        assert_eq!(
            s.alerts[1].events,
            vec![AlertEvent::Status, AlertEvent::DeadLetter]
        );
        assert_eq!(s.alerts[1].min_interval_s, 300);
        assert_eq!(s.alerting.backlog_age_s, 120);
        assert_eq!(s.alerting.relay_failing_s, 900);
        let shown = s.to_display_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("https://discord.example/********"),
            "{shown}"
        );
        // What check-config prints loads again.
        assert!(shown.parse::<Table>().is_ok(), "{shown}");
    }

    #[test]
    fn bad_targets_name_the_key_and_never_the_url() {
        let cases: &[(&str, &str)] = &[
            ("name = \"Phone\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"", "alerts[0].name"),
            ("name = \"p\"\nkind = \"pager\"\nurl = \"https://n/s3cret\"", "alerts[0]"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"ftp://n/s3cret\"", "alerts[0].url"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"\nevents = []", "alerts[0].events"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"\nevents = [\"disk\", \"disk\"]", "alerts[0].events"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"\nevents = [\"weather\"]", "alerts[0]"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"\nmin_interval_s = 0", "alerts[0].min_interval_s"),
            ("name = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/s3cret\"\ncolour = 1", "colour"),
        ];
        for (entry, key) in cases {
            let e = load_file(&format!("[[alerts]]\n{entry}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{entry}: {e}");
            assert!(!e.contains("s3cret"), "{entry}: {e}");
        }
        let twice = "[[alerts]]\nname = \"p\"\nkind = \"ntfy\"\nurl = \"https://n/a\"\n\
                     [[alerts]]\nname = \"p\"\nkind = \"slack\"\nurl = \"https://n/b\"\n";
        let e = load_file(twice).unwrap_err().to_string();
        assert!(e.contains("alerts[1].name") && e.contains("two"), "{e}");
        let e = load_file("[alerts]\nbacklog_age_s = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[[alerts]]") && e.contains("[alerting]"), "{e}");
        let e = load_file("[alerting]\ndisk_free_pct = 120\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("alerting.disk_free_pct"), "{e}");
        let e = load_file("[alerting]\nbacklog_age = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alerting.backlog_age") && e.contains("backlog_age_s"),
            "{e}"
        );
    }

    #[test]
    fn thresholds_come_from_the_environment_too() {
        let s = Settings::load(&Sources {
            env: vec![
                ("HOOKVAULT_ALERTING_DISK_FREE_PCT".into(), "5.5".into()),
                ("HOOKVAULT_ALERTING_DB_MAX_BYTES".into(), "1000".into()),
            ],
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(s.alerting.disk_free_pct, 5.5);
        assert_eq!(s.alerting.db_max_bytes, Some(1000));
        let e = Settings::load(&Sources {
            env: vec![("HOOKVAULT_ALERTS_URL".into(), "https://x/y".into())],
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HOOKVAULT_ALERTS_URL") && e.contains("[[alerts]]"),
            "{e}"
        );
    }

    #[test]
    fn masked_urls_keep_only_scheme_and_host() {
        assert_eq!(
            mask_alert_url("https://discord.com/api/webhooks/1/tok"),
            "https://discord.com/********"
        );
        assert_eq!(
            mask_alert_url("https://user:pw@ntfy.example:8443/topic?x=1"),
            "https://ntfy.example:8443/********"
        );
        assert_eq!(mask_alert_url("nonsense"), "********");
    }
}
