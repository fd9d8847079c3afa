//! One `[[sources]]` table as configured, and the checks that need more than its types. Every
//! error names the key (`sources[1].secrets`) and the source, never a secret's value.

use serde::{Deserialize, Serialize};

use super::forward::ForwardTarget;
use super::scheme::{Encoding, GenericHeader, SchemeKind, Verifier};

/// A `[[sources]]` table. Unset keys take the defaults in `config.example.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub name: String,
    /// Default `/api/v2/webhooks/in/<name>`; the `orders` source's is `/api/v2/webhooks/orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `orders` (the order parser) or `store` (kept and marked processed); default `orders`
    /// for the source named `orders`, `store` for any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<String>,
    /// This source's ingest token; unset means `ingest.token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Unset means `server.max_body_bytes`, which it may not exceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    #[serde(default = "default_verify")]
    pub verify: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default = "default_tolerance")]
    pub tolerance_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_prefix: Option<String>,
    /// Where each stored message is relayed (a POST of its body and content type, through
    /// the relay's durable deliveries; docs/relay.md): URLs, or tables with extra headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward: Vec<ForwardTarget>,
}

fn default_verify() -> String {
    "none".into()
}

fn default_tolerance() -> u64 {
    300
}

/// The built-in source: the seed's ingest path, the order parser, no signature.
pub const ORDERS: &str = "orders";
pub const ORDERS_PATH: &str = "/api/v2/webhooks/orders";
/// Where a source without a `path` is served: this prefix and its name.
pub const PATH_PREFIX: &str = "/api/v2/webhooks/in/";
/// The generic scheme's header when `signature_header` is unset.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Signature";

/// What a source's messages go through after they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorKind {
    Orders,
    Store,
}

impl ProcessorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessorKind::Orders => "orders",
            ProcessorKind::Store => "store",
        }
    }
}

impl SourceSettings {
    /// The built-in source used when no `[[sources]]` table is given.
    pub fn builtin_orders() -> SourceSettings {
        SourceSettings {
            name: ORDERS.into(),
            verify: default_verify(),
            tolerance_s: default_tolerance(),
            ..SourceSettings::default()
        }
    }

    pub fn effective_path(&self) -> String {
        match &self.path {
            Some(p) => normalize_path(p),
            None if self.name == ORDERS => ORDERS_PATH.into(),
            None => format!("{PATH_PREFIX}{}", self.name),
        }
    }

    /// Checks this table on its own; `key` is how errors name it (`sources[0]`).
    /// `server_max` is `server.max_body_bytes`.
    pub fn check(&self, key: &str, server_max: u64) -> Result<(), String> {
        let named = |field: &str, why: String| {
            Err(format!("{key}.{field} (source {:?}): {why}", self.name))
        };
        for (i, target) in self.forward.iter().enumerate() {
            if let Err((field, why)) = target.check(i) {
                return named(&field, why);
            }
        }
        if !valid_name(&self.name) {
            return Err(format!(
                "{key}.name: {:?} is not a source name: 1 to 32 of a-z, 0-9, _ and -",
                self.name
            ));
        }
        if let Some(path) = &self.path {
            if !path.starts_with('/')
                || path.len() > 256
                || path
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "?#{}%".contains(c))
            {
                return named(
                    "path",
                    format!(
                        "{path:?} is not a plain path like /api/v2/webhooks/in/{}",
                        self.name
                    ),
                );
            }
        }
        self.processor_kind()
            .map_err(|why| format!("{key}.processor (source {:?}): {why}", self.name))?;
        if self.token.as_deref().is_some_and(str::is_empty) {
            return named(
                "token",
                "is empty; remove the key to use ingest.token, or set a secret".into(),
            );
        }
        match self.max_body_bytes {
            Some(0) => return named("max_body_bytes", "must be at least 1".into()),
            Some(n) if n > server_max => {
                return named(
                    "max_body_bytes",
                    format!("{n} is above server.max_body_bytes ({server_max}), which the edge enforces first"),
                )
            }
            _ => {}
        }
        let Some(kind) = SchemeKind::parse(&self.verify) else {
            let names: Vec<&str> = SchemeKind::ALL.iter().map(|k| k.as_str()).collect();
            return named(
                "verify",
                format!("{:?} is not one of {}", self.verify, names.join(", ")),
            );
        };
        match kind {
            SchemeKind::None if !self.secrets.is_empty() => {
                return named("secrets", "are set but verify = \"none\" checks no signature; set verify to the sender's scheme".into())
            }
            SchemeKind::None => {}
            _ if self.secrets.is_empty() => {
                return named("secrets", format!("verify = {:?} needs at least one secret", self.verify))
            }
            _ => {}
        }
        if self.secrets.iter().any(String::is_empty) {
            return named("secrets", "holds an empty secret".into());
        }
        if kind.timestamped() && self.tolerance_s == 0 {
            return named("tolerance_s", "must be at least 1 (seconds)".into());
        }
        if kind != SchemeKind::HmacSha256 {
            for (field, set) in [
                ("signature_header", self.signature_header.is_some()),
                ("signature_encoding", self.signature_encoding.is_some()),
                ("signature_prefix", self.signature_prefix.is_some()),
            ] {
                if set {
                    return named(
                        field,
                        format!(
                            "applies to verify = \"hmac-sha256\" only (this source's is {:?})",
                            self.verify
                        ),
                    );
                }
            }
        }
        if let Some(h) = &self.signature_header {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return named(
                    "signature_header",
                    format!("{h:?} is not a header name like X-Signature"),
                );
            }
        }
        if let Some(e) = &self.signature_encoding {
            if Encoding::parse(e).is_none() {
                return named("signature_encoding", format!("{e:?} is not hex or base64"));
            }
        }
        self.verifier()
            .map_err(|why| format!("{key}.secrets (source {:?}): {why}", self.name))?;
        Ok(())
    }

    pub fn processor_kind(&self) -> Result<ProcessorKind, String> {
        match self.processor.as_deref() {
            Some("orders") => Ok(ProcessorKind::Orders),
            Some("store") => Ok(ProcessorKind::Store),
            None if self.name == ORDERS => Ok(ProcessorKind::Orders),
            None => Ok(ProcessorKind::Store),
            Some(other) => Err(format!("{other:?} is not orders or store")),
        }
    }

    /// The scheme with its secrets decoded.
    pub fn verifier(&self) -> Result<Verifier, String> {
        let kind = SchemeKind::parse(&self.verify)
            .ok_or_else(|| format!("unknown scheme {:?}", self.verify))?;
        let generic = GenericHeader {
            name: self
                .signature_header
                .clone()
                .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.into()),
            encoding: self
                .signature_encoding
                .as_deref()
                .and_then(Encoding::parse)
                .unwrap_or(Encoding::Hex),
            prefix: self.signature_prefix.clone().unwrap_or_default(),
        };
        Verifier::new(kind, &self.secrets, self.tolerance_s, generic)
    }

    /// A copy fit to show: tokens and secrets masked.
    pub fn masked(&self) -> SourceSettings {
        let mut shown = self.clone();
        if shown.token.is_some() {
            shown.token = Some("********".into());
        }
        for s in &mut shown.secrets {
            *s = "********".into();
        }
        shown.forward = shown.forward.iter().map(ForwardTarget::masked).collect();
        shown
    }
}

/// Checks every table, then what they must not share: a name or a path.
pub fn check_all(sources: &[SourceSettings], server_max: u64) -> Result<(), String> {
    for (i, s) in sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        s.check(&key, server_max)?;
        for (j, earlier) in sources[..i].iter().enumerate() {
            if earlier.name == s.name {
                return Err(format!(
                    "{key}.name: {:?} is also sources[{j}]'s name",
                    s.name
                ));
            }
            if earlier.effective_path() == s.effective_path() {
                return Err(format!(
                    "{key}.path: {} is also sources[{j}]'s ({:?}) path; two sources cannot share one path",
                    s.effective_path(),
                    earlier.name
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Without a trailing slash (the router ignores one), so two spellings are one path.
fn normalize_path(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(toml_text: &str) -> SourceSettings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_and_paths() {
        let s = source("name = \"shopify\"");
        assert_eq!(s.effective_path(), "/api/v2/webhooks/in/shopify");
        assert_eq!(s.processor_kind().unwrap(), ProcessorKind::Store);
        assert_eq!((s.verify.as_str(), s.tolerance_s), ("none", 300));
        let o = source("name = \"orders\"");
        assert_eq!(o.effective_path(), ORDERS_PATH);
        assert_eq!(o.processor_kind().unwrap(), ProcessorKind::Orders);
        assert_eq!(SourceSettings::builtin_orders(), o);
        assert_eq!(
            source("name = \"x\"\npath = \"/hooks/x/\"").effective_path(),
            "/hooks/x"
        );
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("name = \"Shop\"", "sources[0].name"),
            ("name = \"a\"\npath = \"hooks\"", "sources[0].path"),
            ("name = \"a\"\nprocessor = \"x\"", "sources[0].processor"),
            ("name = \"a\"\nverify = \"md5\"", "sources[0].verify"),
            ("name = \"a\"\nverify = \"github\"", "sources[0].secrets"),
            ("name = \"a\"\nsecrets = [\"s\"]", "sources[0].secrets"),
            ("name = \"a\"\nverify = \"standard-webhooks\"\nsecrets = [\"whsec_??\"]", "sources[0].secrets"),
            ("name = \"a\"\nverify = \"github\"\nsecrets = [\"s\"]\nsignature_header = \"X\"", "sources[0].signature_header"),
            ("name = \"a\"\nverify = \"hmac-sha256\"\nsecrets = [\"s\"]\nsignature_encoding = \"b32\"", "sources[0].signature_encoding"),
            ("name = \"a\"\nmax_body_bytes = 99999999999", "sources[0].max_body_bytes"),
            ("name = \"a\"\ntoken = \"\"", "sources[0].token"),
            ("name = \"a\"\nverify = \"stripe\"\nsecrets = [\"s\"]\ntolerance_s = 0", "sources[0].tolerance_s"),
            ("name = \"a\"\nforward = [\"ftp://h/whsec_??\"]", "sources[0].forward[0]"),
            ("name = \"a\"\nforward = [\"https://h/x\", { url = \"https://h/y\", headers = { Host = \"whsec_??\" } }]", "sources[0].forward[1].headers.Host"),
        ];
        for (text, key) in cases {
            let e = check_all(&[source(text)], 1_048_576).unwrap_err();
            assert!(e.starts_with(key), "{text}: {e}");
            assert!(!e.contains("whsec_??"), "a secret in the message: {e}");
        }
        let twice = [
            source("name = \"a\""),
            source("name = \"b\"\npath = \"/api/v2/webhooks/in/a/\""),
        ];
        let e = check_all(&twice, 1_048_576).unwrap_err();
        assert!(
            e.starts_with("sources[1].path") && e.contains("\"a\""),
            "{e}"
        );
        let same = [
            source("name = \"a\""),
            source("name = \"a\"\npath = \"/x\""),
        ];
        assert!(check_all(&same, 1_048_576)
            .unwrap_err()
            .starts_with("sources[1].name"));
    }
}
