//! Sources: every ingest path is one (`[[sources]]`, or the built-in `orders` source at the
//! seed's path when none is configured). A source names its messages, decides their processor
//! and is where a sender's signature is checked, before anything is stored.
//!
//! This module sits with the settings (layer 2): it reads its own configuration tables and
//! imports nothing from the layers above; HTTP asks it whether a request passes, `hookvault
//! sign` asks it for the headers a sender would send.

pub mod forward;
pub mod reason;
pub mod scheme;
pub mod settings;

pub use forward::ForwardTarget;
pub use reason::{Reason, Refused};
pub use scheme::{Headers, SchemeKind, Verified, Verifier};
pub use settings::{ProcessorKind, SourceSettings};

/// One source, ready to serve: its settings resolved against the global ones.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: String,
    pub processor: ProcessorKind,
    /// Its own token, else `ingest.token`; `None`: open.
    pub token: Option<String>,
    pub max_body_bytes: u64,
    pub verifier: Verifier,
    /// Where each stored message is relayed (`forward`), with each target's extra headers.
    pub forward: Vec<ForwardTarget>,
}

/// The configured sources, looked up by path for every webhook.
#[derive(Debug, Clone)]
pub struct SourceList {
    sources: Vec<Source>,
}

impl SourceList {
    /// `tables` as configured (empty: the built-in `orders` source); `ingest_token` and
    /// `server_max` are `ingest.token` and `server.max_body_bytes`.
    pub fn new(
        tables: &[SourceSettings],
        ingest_token: Option<&str>,
        server_max: u64,
    ) -> Result<SourceList, String> {
        let builtin = [SourceSettings::builtin_orders()];
        let tables = if tables.is_empty() {
            &builtin[..]
        } else {
            tables
        };
        settings::check_all(tables, server_max)?;
        let sources = tables
            .iter()
            .map(|t| {
                Ok(Source {
                    name: t.name.clone(),
                    path: t.effective_path(),
                    processor: t.processor_kind()?,
                    token: t.token.clone().or_else(|| ingest_token.map(str::to_string)),
                    max_body_bytes: t.max_body_bytes.unwrap_or(server_max),
                    verifier: t.verifier()?,
                    forward: t.forward.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SourceList { sources })
    }

    /// The source served at `path` (a trailing slash ignored, as the router does).
    pub fn by_path(&self, path: &str) -> Option<&Source> {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        self.sources.iter().find(|s| s.path == path)
    }

    pub fn by_name(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_means_the_builtin_orders_source() {
        let list = SourceList::new(&[], Some("t"), 1000).unwrap();
        let orders = list.by_path("/api/v2/webhooks/orders/").unwrap();
        assert_eq!(orders.name, "orders");
        assert_eq!(orders.processor, ProcessorKind::Orders);
        assert_eq!(orders.token.as_deref(), Some("t"));
        assert_eq!(orders.verifier.kind(), SchemeKind::None);
        assert!(list.by_path("/api/v2/webhooks/in/orders").is_none());
    }

    #[test]
    fn a_source_token_replaces_the_ingest_token() {
        let tables: Vec<SourceSettings> = vec![
            toml::from_str("name = \"a\"\ntoken = \"own\"\nmax_body_bytes = 10").unwrap(),
            toml::from_str("name = \"b\"").unwrap(),
        ];
        let list = SourceList::new(&tables, Some("global"), 1000).unwrap();
        let a = list.by_name("a").unwrap();
        assert_eq!((a.token.as_deref(), a.max_body_bytes), (Some("own"), 10));
        let b = list.by_path("/api/v2/webhooks/in/b").unwrap();
        assert_eq!(
            (b.token.as_deref(), b.max_body_bytes),
            (Some("global"), 1000)
        );
        assert_eq!(list.names(), vec!["a", "b"]);
    }
}
