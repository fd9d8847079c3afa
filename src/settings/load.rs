//! Settings, merged in one place: built-in defaults < TOML file < `HOOKVAULT_<SECTION>_<KEY>`
//! environment < command-line flags. Every layer is folded into one TOML table first and only
//! then deserialized, so every source gets the same validation and the same error messages
//! (unknown keys and bad values name the key and where it came from).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

use super::alerts::{check_alert_url, mask_alert_url, AlertTarget};
use super::sections::{Settings, BACKENDS};
use super::sources::SourceSettings;
use crate::base::error::{Error, Result};

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "HOOKVAULT_";

/// Where the settings come from; the pieces are merged by [`Settings::load`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// `(NAME, value)` pairs; only names starting with [`ENV_PREFIX`] are looked at.
    pub env: Vec<(String, String)>,
    /// `("section.key", value)` from command-line flags.
    pub flags: Vec<(String, Value)>,
}

impl Sources {
    /// The process's own environment.
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        self
    }
}

impl Settings {
    /// Merges every source in precedence order and validates the result.
    pub fn load(sources: &Sources) -> Result<Settings> {
        let mut merged = Table::new();
        if let Some(path) = &sources.file {
            let file = read_file_table(path)?;
            merge_layer(&mut merged, file, &format!("{}", path.display()))?;
        }
        for (name, raw) in &sources.env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if rest.starts_with("SOURCES_") {
                return Err(Error::Config(format!(
                    "environment variable {name}: sources are tables ([[sources]]); set them in the config file"
                )));
            }
            let Some((section, key)) = rest.split_once('_') else {
                return Err(Error::Config(format!(
                    "environment variable {name}: expected {ENV_PREFIX}<SECTION>_<KEY>, e.g. HOOKVAULT_SERVER_LISTEN"
                )));
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            set_key(
                &mut merged,
                &section,
                &key,
                env_value(&section, &key, raw),
                &format!("environment variable {name}"),
            )?;
        }
        for (dotted, value) in &sources.flags {
            let (section, key) = dotted.split_once('.').unwrap_or(("", dotted));
            set_key(&mut merged, section, key, value.clone(), "command line")?;
        }
        let settings = Settings::from_table(merged)?;
        settings.validate()?;
        Ok(settings)
    }

    fn from_table(table: Table) -> Result<Settings> {
        Settings::deserialize(Value::Table(table)).map_err(|e| Error::Config(e.to_string()))
    }

    /// Semantic checks that types alone cannot express; each message names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("{key}: {why}")));
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "server.listen",
                &format!(
                    "{:?} is not an address like 127.0.0.1:8001",
                    self.server.listen
                ),
            );
        }
        if self.websocket.listen != "off"
            && self
                .websocket
                .listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return bad(
                "websocket.listen",
                &format!(
                    "{:?} is not an address like 127.0.0.1:8002 (or \"off\")",
                    self.websocket.listen
                ),
            );
        }
        if self.server.max_body_bytes == 0 {
            return bad("server.max_body_bytes", "must be at least 1");
        }
        if self.server.idle_timeout_s == 0 {
            return bad("server.idle_timeout_s", "must be at least 1 (seconds)");
        }
        if self.server.body_timeout_s == 0 {
            return bad("server.body_timeout_s", "must be at least 1 (seconds)");
        }
        for proxy in &self.server.trusted_proxies {
            if let Err(why) = proxy.parse::<crate::base::cidr::Cidr>() {
                return bad("server.trusted_proxies", &why);
            }
        }
        for host in &self.server.allowed_hosts {
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return bad(
                    "server.allowed_hosts",
                    &format!("{host:?} is not a host name like hooks.example.com"),
                );
            }
        }
        if !["auto", "gate", "direct"].contains(&self.server.edge.as_str()) {
            return bad(
                "server.edge",
                &format!(
                    "{:?} is not one of \"auto\", \"gate\", \"direct\"",
                    self.server.edge
                ),
            );
        }
        if !(1..=65_536).contains(&self.server.max_connections) {
            return bad("server.max_connections", "must be between 1 and 65536");
        }
        if !(1..=1024).contains(&self.server.handler_threads) {
            return bad("server.handler_threads", "must be between 1 and 1024");
        }
        if !(1..=1024).contains(&self.queue.workers) {
            return bad("queue.workers", "must be between 1 and 1024");
        }
        if self.queue.capacity == 0 {
            return bad("queue.capacity", "must be at least 1");
        }
        if self.queue.backoff_max_ms < self.queue.backoff_base_ms {
            return bad(
                "queue.backoff_max_ms",
                "must not be below queue.backoff_base_ms",
            );
        }
        if self.relay.max_attempts == 0 {
            return bad("relay.max_attempts", "must be at least 1");
        }
        if self.relay.concurrency == 0 {
            return bad("relay.concurrency", "must be at least 1 request per target");
        }
        if self.relay.timeout_s == 0 {
            return bad("relay.timeout_s", "must be at least 1 (seconds)");
        }
        if !(self.relay.discord_base.starts_with("https://")
            || self.relay.discord_base.starts_with("http://"))
        {
            return bad(
                "relay.discord_base",
                "must be an http:// or https:// URL like https://discord.com",
            );
        }
        if self.queue.lease_s == 0 {
            return bad("queue.lease_s", "must be at least 1 (seconds)");
        }
        if self
            .node
            .id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return bad(
                "node.id",
                "is empty; remove the key to use the host name and port",
            );
        }
        if self.queue.max_backlog == 0 {
            return bad("queue.max_backlog", "must be at least 1");
        }
        if self.ingest.rejections_kept == 0 {
            return bad(
                "ingest.rejections_kept",
                "must be at least 1 (the rejections log keeps that many rows)",
            );
        }
        crate::settings::sources::settings::check_all(&self.sources, self.server.max_body_bytes)
            .map_err(Error::Config)?;
        if self.storage.path.as_os_str().is_empty() {
            return bad("storage.path", "must not be empty");
        }
        self.validate_backend()?;
        if let Some(id) = &self.node.id {
            if id.len() > 128 || id.chars().any(char::is_control) {
                return bad(
                    "node.id",
                    "must be 1 to 128 printable characters (or unset: host name and port)",
                );
            }
        }
        for (key, token) in [
            ("server.admin_token", &self.server.admin_token),
            ("ingest.token", &self.ingest.token),
        ] {
            if token.as_deref().is_some_and(str::is_empty) {
                return bad(
                    key,
                    "is empty; remove the key to disable it, or set a secret",
                );
            }
        }
        if self.log.level.parse::<log::LevelFilter>().is_err() {
            return bad(
                "log.level",
                &format!(
                    "{:?} is not one of off, error, warn, info, debug, trace",
                    self.log.level
                ),
            );
        }
        if let Some(c) = &self.orders.default_currency {
            if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return bad(
                    "orders.default_currency",
                    &format!("{c:?} is not an ISO 4217 code like USD"),
                );
            }
        }
        self.validate_alerts()
    }

    /// `[[alerts]]` and `[alerting]`; a target is named by its position and name, never by
    /// its URL (which holds a secret).
    fn validate_alerts(&self) -> Result<()> {
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

    /// `storage.backend` names a backend this build has, with what it needs.
    fn validate_backend(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("{key}: {why}")));
        match self.storage.backend.as_str() {
            "sqlite" => Ok(()),
            "postgres" if !cfg!(feature = "postgres") => bad(
                "storage.backend",
                "\"postgres\" needs a hookvault built with the PostgreSQL backend: \
                 cargo build --release --features postgres (see docs/cluster.md)",
            ),
            "postgres" => match self.storage.url.as_deref() {
                None => bad(
                    "storage.url",
                    "is required with storage.backend = \"postgres\", e.g. \
                     postgres://hookvault@db.example/hookvault (or HOOKVAULT_STORAGE_URL)",
                ),
                Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                    bad(
                        "storage.url",
                        "must start with postgres:// (e.g. postgres://hookvault@db.example/hookvault)",
                    )
                }
                Some(_) => Ok(()),
            },
            other => bad(
                "storage.backend",
                &format!("{other:?} is not one of {}", BACKENDS.join(", ")),
            ),
        }
    }

    /// This node's name in leases: `node.id`, or the host name and the port of `server.listen`.
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.node.id {
            return id.clone();
        }
        let port = self
            .server
            .listen
            .parse::<std::net::SocketAddr>()
            .map(|a| a.port())
            .unwrap_or(0);
        format!("{}:{port}", host_name())
    }

    /// The effective configuration as TOML, secrets masked, for `check-config`.
    pub fn to_display_toml(&self) -> String {
        let mut shown = self.clone();
        let mask = |t: &mut Option<String>| {
            if t.is_some() {
                *t = Some("********".into());
            }
        };
        mask(&mut shown.server.admin_token);
        mask(&mut shown.ingest.token);
        shown.sources = shown.sources.iter().map(SourceSettings::masked).collect();
        if let Some(url) = &mut shown.storage.url {
            *url = mask_url_password(url);
        }
        for target in &mut shown.alerts {
            target.url = mask_alert_url(&target.url);
        }
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// The kernel's host name (Linux), else `$HOSTNAME`, else "localhost".
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_string(),
    }
}

fn read_file_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    text.parse::<Table>()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Folds a whole file into the merged table, checking its keys as it goes.
fn merge_layer(merged: &mut Table, layer: Table, origin: &str) -> Result<()> {
    for (section, value) in layer {
        if section == "sources" {
            merged.insert(section, source_tables(value, origin)?);
            continue;
        }
        if section == ALERT_TARGETS {
            set_alert_targets(merged, value, origin)?;
            continue;
        }
        let Value::Table(keys) = value else {
            return Err(Error::Config(format!(
                "{origin}: `{section}` must be a [section]; known sections: {}",
                SECTIONS.join(", ")
            )));
        };
        for (key, value) in keys {
            set_key(merged, &section, &key, value, origin)?;
        }
    }
    Ok(())
}

const SECTIONS: &[&str] = &[
    "server",
    "ingest",
    "queue",
    "storage",
    "node",
    "websocket",
    "log",
    "orders",
    "alerts",
    "alerting",
    "relay",
    "sources",
];

/// `[[alerts]]`: an array of tables (one per target), not a section.
const ALERT_TARGETS: &str = "alerts";

/// `[[alerts]]` from a file: every entry checked on its own so the error names it.
fn set_alert_targets(merged: &mut Table, value: Value, origin: &str) -> Result<()> {
    let Value::Array(entries) = value else {
        return Err(Error::Config(format!(
            "{origin}: `alerts` must be written as [[alerts]] tables, one per target \
             (thresholds go in [alerting])"
        )));
    };
    for (i, entry) in entries.iter().enumerate() {
        if let Err(e) = AlertTarget::deserialize(entry.clone()) {
            let detail = e.to_string();
            let detail = detail.trim_end();
            return Err(Error::Config(format!(
                "{origin}: bad [[alerts]] entry alerts[{i}]: {detail}"
            )));
        }
    }
    merged.insert(ALERT_TARGETS.into(), Value::Array(entries));
    Ok(())
}

/// `[[sources]]` from one file: an array of tables, each checked for its keys' names and
/// types here so the error names the file and the table (`sources[1]`).
fn source_tables(value: Value, origin: &str) -> Result<Value> {
    let Value::Array(tables) = &value else {
        return Err(Error::Config(format!(
            "{origin}: `sources` must be an array of tables: write each source as [[sources]]"
        )));
    };
    for (i, table) in tables.iter().enumerate() {
        if let Err(e) = SourceSettings::deserialize(table.clone()) {
            let detail = e.to_string();
            return Err(Error::Config(format!(
                "{origin}: sources[{i}]: {}",
                detail.trim()
            )));
        }
    }
    Ok(value)
}

/// Sets `section.key`, refusing keys the program does not know so a typo never goes unnoticed,
/// and checking the value's type against the key's default right away so the error can say
/// which source gave the bad value.
fn set_key(merged: &mut Table, section: &str, key: &str, value: Value, origin: &str) -> Result<()> {
    if section == ALERT_TARGETS {
        return Err(Error::Config(format!(
            "{origin}: `alerts.{key}`: alert targets come from [[alerts]] tables in the \
             config file; thresholds are in [alerting] (e.g. alerting.backlog_age_s)"
        )));
    }
    let defaults = Value::try_from(Settings::default()).expect("defaults serialize");
    let Some(known) = defaults.get(section).and_then(Value::as_table) else {
        return Err(Error::Config(format!(
            "{origin}: unknown section `{section}` (key `{section}.{key}`); known sections: {}",
            SECTIONS.join(", ")
        )));
    };
    let optional = OPTIONAL_KEYS.contains(&(section, key));
    if !known.contains_key(key) && !optional {
        let mut names: Vec<&str> = known.keys().map(String::as_str).collect();
        names.extend(
            OPTIONAL_KEYS
                .iter()
                .filter(|(s, _)| *s == section)
                .map(|(_, k)| *k),
        );
        return Err(Error::Config(format!(
            "{origin}: unknown key `{section}.{key}`; known keys in [{section}]: {}",
            names.join(", ")
        )));
    }
    // Check the value by deserializing the section with just this key set.
    let mut probe = Table::new();
    let mut section_table = Table::new();
    section_table.insert(key.to_string(), value.clone());
    probe.insert(section.to_string(), Value::Table(section_table));
    if let Err(e) = Settings::from_table(probe) {
        let detail = e.to_string();
        let detail = detail.trim_start_matches("configuration: ");
        return Err(Error::Config(format!(
            "{origin}: bad value for `{section}.{key}`: {detail}"
        )));
    }
    let entry = merged
        .entry(section.to_string())
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(t) = entry {
        t.insert(key.to_string(), value);
    }
    Ok(())
}

/// Keys that have no default value (so the serialized defaults do not list them).
const OPTIONAL_KEYS: &[(&str, &str)] = &[
    ("server", "admin_token"),
    ("ingest", "token"),
    ("orders", "default_currency"),
    ("storage", "url"),
    ("node", "id"),
    ("alerting", "db_max_bytes"),
];

/// Environment values are text; the key decides what the text means. A key whose value is a
/// string (a token, an address, a path) takes the text as it is, so
/// `HOOKVAULT_SERVER_ADMIN_TOKEN=12345678901234` is a token, not a number. A numeric or boolean
/// key parses it (`HOOKVAULT_QUEUE_WORKERS=4` is the number 4); text that does not parse stays
/// a string so the type check in [`set_key`] names the key and the bad value.
fn env_value(section: &str, key: &str, raw: &str) -> Value {
    let text = || Value::String(raw.to_string());
    if OPTIONAL_KEYS.contains(&(section, key)) {
        // Every optional key but one is a string (see OPTIONAL_KEYS).
        if (section, key) == ("alerting", "db_max_bytes") {
            return raw
                .trim()
                .parse::<i64>()
                .map_or_else(|_| text(), Value::Integer);
        }
        return text();
    }
    let defaults = Value::try_from(Settings::default()).expect("defaults serialize");
    match defaults.get(section).and_then(|s| s.get(key)) {
        Some(Value::String(_)) => text(),
        Some(Value::Integer(_)) => raw
            .trim()
            .parse::<i64>()
            .map_or_else(|_| text(), Value::Integer),
        Some(Value::Float(_)) => raw
            .trim()
            .parse::<f64>()
            .map_or_else(|_| text(), Value::Float),
        Some(Value::Boolean(_)) => raw
            .trim()
            .parse::<bool>()
            .map_or_else(|_| text(), Value::Boolean),
        // Tables, arrays and unknown keys: no single reading is right; take numbers and
        // booleans as such and let set_key report what the key expected.
        _ => {
            if let Ok(i) = raw.parse::<i64>() {
                Value::Integer(i)
            } else if let Ok(b) = raw.parse::<bool>() {
                Value::Boolean(b)
            } else {
                text()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)], flags: &[(&str, Value)]) -> Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let mut sources = Sources::default();
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            sources.file = Some(path);
        }
        sources.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sources.flags = flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Settings::load(&sources)
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let s = load(None, &[], &[]).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8001");
        assert_eq!(s.server.max_body_bytes, 1_048_576);
        assert_eq!(s.queue.workers, 10);
        assert_eq!(s.queue.capacity, 10_000);
        assert_eq!(s.queue.max_retries, 3);
        assert_eq!(
            (s.queue.backoff_base_ms, s.queue.backoff_max_ms),
            (1000, 60_000)
        );
        assert_eq!(s.queue.max_backlog, 1_000_000);
        assert_eq!(s.queue.shutdown_timeout_s, 20);
        assert_eq!(s.queue.lease_s, 30);
        let host = s.node_id();
        assert!(host.ends_with(":8001") && host.len() > 5, "{host}");
        assert_eq!(s.storage.path, PathBuf::from("hookvault.db"));
        assert_eq!(s.storage.retention_days, 30);
        assert_eq!(s.websocket.listen, "127.0.0.1:8002");
        assert_eq!(s.log.level, "info");
        assert!(s.server.admin_token.is_none() && s.ingest.token.is_none());
        assert_eq!(s.storage.backend, "sqlite");
        assert_eq!(s.queue.lease_s, 30);
        assert!(s.storage.url.is_none() && s.node.id.is_none());
        assert!(s.node_id().ends_with(":8001"), "{}", s.node_id());
    }

    #[test]
    fn the_backend_is_checked_against_the_build() {
        let e = load(Some("[storage]\nbackend = \"mysql\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storage.backend") && e.contains("sqlite, postgres"),
            "{e}"
        );
        let pg = "[storage]\nbackend = \"postgres\"\n";
        let e = load(Some(pg), &[], &[]).unwrap_err().to_string();
        if cfg!(feature = "postgres") {
            assert!(e.contains("storage.url"), "{e}");
            let s = load(
                Some(pg),
                &[
                    ("HOOKVAULT_STORAGE_URL", "postgres://u:pw@db/hv"),
                    ("HOOKVAULT_NODE_ID", "a"),
                ],
                &[],
            )
            .unwrap();
            assert_eq!(s.storage.url.as_deref(), Some("postgres://u:pw@db/hv"));
            assert_eq!(s.node_id(), "a");
            let shown = s.to_display_toml();
            assert!(shown.contains("postgres://u:********@db/hv"), "{shown}");
        } else {
            assert!(e.contains("--features postgres"), "{e}");
        }
    }

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        let file = "[queue]\nworkers = 2\ncapacity = 50\n[server]\nlisten = \"127.0.0.1:9000\"\n";
        let s = load(Some(file), &[], &[]).unwrap();
        assert_eq!((s.queue.workers, s.queue.capacity), (2, 50));
        let s = load(Some(file), &[("HOOKVAULT_QUEUE_WORKERS", "3")], &[]).unwrap();
        assert_eq!((s.queue.workers, s.queue.capacity), (3, 50));
        let s = load(
            Some(file),
            &[("HOOKVAULT_QUEUE_WORKERS", "3")],
            &[("queue.workers", Value::Integer(4))],
        )
        .unwrap();
        assert_eq!(s.queue.workers, 4);
        assert_eq!(s.server.listen, "127.0.0.1:9000");
        let s = load(None, &[("HOOKVAULT_QUEUE_BACKOFF_BASE_MS", "5")], &[]).unwrap();
        assert_eq!(s.queue.backoff_base_ms, 5);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = load(Some("[queue]\nworkerz = 2\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue.workerz") && e.contains("workers"), "{e}");
        let e = load(Some("[qeue]\nworkers = 2\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown section `qeue`"), "{e}");
        let e = load(None, &[("HOOKVAULT_QUEUE_WORKERS", "many")], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HOOKVAULT_QUEUE_WORKERS") && e.contains("queue.workers"),
            "{e}"
        );
        let e = load(Some("[queue]\nworkers = 0\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue.workers"), "{e}");
        let e = load(Some("[server]\nlisten = \"nowhere\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = load(Some("not toml ="), &[], &[]).unwrap_err().to_string();
        assert!(e.contains("c.toml"), "{e}");
    }

    #[test]
    fn environment_values_for_string_keys_stay_strings() {
        let s = load(
            None,
            &[
                ("HOOKVAULT_SERVER_ADMIN_TOKEN", "12345678901234"),
                ("HOOKVAULT_INGEST_TOKEN", "true"),
                ("HOOKVAULT_STORAGE_PATH", "2024"),
                ("HOOKVAULT_LOG_LEVEL", "warn"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(s.server.admin_token.as_deref(), Some("12345678901234"));
        assert_eq!(s.ingest.token.as_deref(), Some("true"));
        assert_eq!(s.storage.path, PathBuf::from("2024"));
        assert_eq!(s.log.level, "warn");
        // A leading zero is kept: the token is the text, not a number that prints differently.
        let s = load(None, &[("HOOKVAULT_SERVER_ADMIN_TOKEN", "007")], &[]).unwrap();
        assert_eq!(s.server.admin_token.as_deref(), Some("007"));
    }

    #[test]
    fn environment_values_for_numeric_keys_are_numbers() {
        let s = load(
            None,
            &[
                ("HOOKVAULT_QUEUE_WORKERS", "4"),
                ("HOOKVAULT_SERVER_MAX_BODY_BYTES", " 2048 "),
                ("HOOKVAULT_STORAGE_RETENTION_DAYS", "7"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(s.queue.workers, 4);
        assert_eq!(s.server.max_body_bytes, 2048);
        assert_eq!(s.storage.retention_days, 7);
        let e = load(None, &[("HOOKVAULT_QUEUE_CAPACITY", "lots")], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HOOKVAULT_QUEUE_CAPACITY") && e.contains("\"lots\""),
            "{e}"
        );
    }

    #[test]
    fn env_value_follows_the_type_of_the_key() {
        assert_eq!(
            env_value("server", "listen", "1"),
            Value::String("1".into())
        );
        assert_eq!(env_value("queue", "workers", "12"), Value::Integer(12));
        assert_eq!(
            env_value("queue", "workers", "x"),
            Value::String("x".into())
        );
        assert_eq!(
            env_value("orders", "default_currency", "123"),
            Value::String("123".into())
        );
        // A key the program does not know is refused later; its value is read as before.
        assert_eq!(env_value("queue", "nope", "3"), Value::Integer(3));
    }

    #[test]
    fn sources_are_tables_checked_at_load() {
        let file = "[[sources]]\nname = \"gh\"\nverify = \"github\"\nsecrets = [\"topsecret\"]\ntoken = \"tok\"\n\n[[sources]]\nname = \"orders\"\n";
        let s = load(Some(file), &[], &[]).unwrap();
        assert_eq!(s.sources.len(), 2);
        assert_eq!(s.sources[0].verify, "github");
        let shown = s.to_display_toml();
        assert!(
            !shown.contains("topsecret")
                && !shown.contains("\"tok\"")
                && shown.contains("[[sources]]"),
            "{shown}"
        );

        let e = load(
            Some("[[sources]]\nname = \"a\"\nsecret = [\"x\"]\n"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sources[0]") && e.contains("secret"), "{e}");
        let e = load(Some("[sources]\nname = \"a\"\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[[sources]]"), "{e}");
        let e = load(
            Some("[[sources]]\nname = \"a\"\nverify = \"standard-webhooks\"\nsecrets = [\"whsec_%%\"]\n"),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sources[0].secrets") && !e.contains("%%"), "{e}");
        let e = load(None, &[("HOOKVAULT_SOURCES_NAME", "x")], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("config file"), "{e}");
        let e = load(Some("[ingest]\nrejections_kept = 0\n"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ingest.rejections_kept"), "{e}");
    }

    #[test]
    fn optional_keys_and_aliases_are_accepted() {
        let file = "[server]\nadmin_token = \"s3cret\"\n[ingest]\ntoken = \"t\"\n[orders]\ndefault_currency = \"EUR\"\n[orders.aliases]\norder_number = [\"Bestellnummer\"]\n";
        let s = load(Some(file), &[], &[]).unwrap();
        assert_eq!(s.server.admin_token.as_deref(), Some("s3cret"));
        assert_eq!(
            s.orders.aliases["order_number"],
            vec!["Bestellnummer".to_string()]
        );
        let shown = s.to_display_toml();
        assert!(
            !shown.contains("s3cret") && shown.contains("********"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod alert_tests {
    use super::*;
    use crate::settings::{AlertEvent, AlertKind};

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

#[cfg(test)]
mod example_file {
    use super::*;

    /// `config.example.toml` documents every key with its default: loading it must give
    /// exactly the built-in defaults, and it must mention every key the program knows.
    #[test]
    fn example_config_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let sources = Sources {
            file: Some(path.clone()),
            ..Sources::default()
        };
        assert_eq!(Settings::load(&sources).unwrap(), Settings::default());
        let text = std::fs::read_to_string(path).unwrap();
        let defaults = Value::try_from(Settings::default()).unwrap();
        for (section, keys) in defaults.as_table().unwrap() {
            for key in keys.as_table().unwrap().keys() {
                let documented = text.contains(&format!("\n{key} ="))
                    || text.contains(&format!("[{section}.{key}]"));
                assert!(documented, "config.example.toml lacks {section}.{key}");
            }
        }
        // No alert target by default: the file shows one, commented out.
        assert!(
            text.contains("# [[alerts]]"),
            "config.example.toml lacks [[alerts]]"
        );
        for (section, key) in OPTIONAL_KEYS {
            assert!(
                text.contains(&format!("# {key} =")),
                "config.example.toml lacks {section}.{key}"
            );
        }
    }
}
