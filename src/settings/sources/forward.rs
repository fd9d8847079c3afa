//! A source's `forward` targets: where each stored message is relayed (a POST of its body and
//! content type), each a URL or a table with extra request headers:
//!
//! ```toml
//! forward = ["https://a.example/hook", { url = "https://b.example/hook", headers = { Authorization = "Bearer ..." } }]
//! ```
//!
//! A header's value is a secret (a bearer token, an API key): it is sent, and stored with the
//! delivery, but never shown; errors name the source and the header, never the value.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One `forward` entry.
#[derive(Clone, Default, PartialEq)]
pub struct ForwardTarget {
    /// The full URL (a secret in its last path segment or query is masked wherever shown).
    pub url: String,
    /// Extra request headers, sent as given (checked by [`ForwardTarget::check`]).
    pub headers: Vec<(String, String)>,
}

/// What a header value is shown as.
pub const MASKED_VALUE: &str = "********";

/// Headers a forward target may not set: hop-by-hop ones (they describe one connection, and
/// the HTTP client owns it), and the ones the request itself decides (where it goes, how long
/// its body is, and the message's own content type, which is relayed unchanged).
const REFUSED: [(&str, &str); 12] = [
    ("connection", "hop-by-hop"),
    ("keep-alive", "hop-by-hop"),
    ("proxy-authenticate", "hop-by-hop"),
    ("proxy-authorization", "hop-by-hop"),
    ("proxy-connection", "hop-by-hop"),
    ("te", "hop-by-hop"),
    ("trailer", "hop-by-hop"),
    ("transfer-encoding", "hop-by-hop"),
    ("upgrade", "hop-by-hop"),
    ("host", "set from the URL"),
    ("content-length", "set from the body"),
    ("content-type", "the message's own, relayed unchanged"),
];

impl ForwardTarget {
    /// Checks the URL and the headers; the error says what is wrong with which entry
    /// (`"forward[1].headers.Host"`, `why`), never a header's value.
    pub fn check(&self, index: usize) -> Result<(), (String, String)> {
        let at = format!("forward[{index}]");
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err((
                at,
                format!(
                    "{:?} is not an http:// or https:// URL",
                    crate::base::mask::mask_target(&self.url)
                ),
            ));
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let key = format!("{at}.headers.{name}");
            if !valid_name(name) {
                return Err((
                    format!("{at}.headers"),
                    format!("{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"),
                ));
            }
            if let Some((_, why)) = REFUSED
                .iter()
                .find(|(refused, _)| name.eq_ignore_ascii_case(refused))
            {
                return Err((key, format!("{name} may not be set here ({why})")));
            }
            if let Some((first, _)) = self.headers[..i]
                .iter()
                .find(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                return Err((key, format!("is set twice ({first} and {name})")));
            }
            if !value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
            {
                return Err((
                    key,
                    "its value must be printable ASCII on one line (no line breaks or control characters)".into(),
                ));
            }
        }
        Ok(())
    }

    /// A copy fit to show: the URL masked as the relay masks it, every header value hidden.
    pub fn masked(&self) -> ForwardTarget {
        ForwardTarget {
            url: crate::base::mask::mask_target(&self.url),
            headers: self
                .headers
                .iter()
                .map(|(name, _)| (name.clone(), MASKED_VALUE.into()))
                .collect(),
        }
    }
}

/// An RFC 9110 token.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Never the header values, even in a debug line.
impl fmt::Debug for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.masked();
        f.debug_struct("ForwardTarget")
            .field("url", &shown.url)
            .field("headers", &shown.headers)
            .finish()
    }
}

/// A URL string, or `{ url, headers }`; an error never quotes a value.
impl<'de> Deserialize<'de> for ForwardTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        from_value(value).map_err(serde::de::Error::custom)
    }
}

const SHAPE: &str = "a forward entry is a URL string or a table like \
     { url = \"https://backend.example/hook\", headers = { Authorization = \"Bearer ...\" } }";

fn from_value(value: serde_json::Value) -> Result<ForwardTarget, String> {
    use serde_json::Value;
    let table = match value {
        Value::String(url) => {
            return Ok(ForwardTarget {
                url,
                headers: Vec::new(),
            })
        }
        Value::Object(table) => table,
        _ => return Err(SHAPE.into()),
    };
    let mut target = ForwardTarget::default();
    let mut url = None;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("url", Value::String(u)) => url = Some(u),
            ("url", _) => return Err("a forward table's url must be a string".into()),
            ("headers", Value::Object(headers)) => {
                for (name, value) in headers {
                    let Value::String(value) = value else {
                        return Err(format!(
                            "forward header {name:?}: its value must be a string"
                        ));
                    };
                    target.headers.push((name, value));
                }
            }
            ("headers", _) => {
                return Err(format!(
                    "a forward table's headers must be a table of names and values; {SHAPE}"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "a forward table takes url and headers, not {other:?}"
                ))
            }
        }
    }
    target.url = url.ok_or_else(|| format!("a forward table needs a url; {SHAPE}"))?;
    Ok(target)
}

/// A plain URL when there are no headers, so a configuration shows as it was written.
impl Serialize for ForwardTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.headers.is_empty() {
            return s.serialize_str(&self.url);
        }
        #[derive(Serialize)]
        struct Table<'a> {
            url: &'a str,
            headers: std::collections::BTreeMap<&'a str, &'a str>,
        }
        Table {
            url: &self.url,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Entries {
        forward: Vec<ForwardTarget>,
    }

    /// As the configuration is read: the file's text into a value, then into the settings
    /// (so an error is the deserializer's message alone, without the text around it).
    fn parse(text: &str) -> Result<Vec<ForwardTarget>, String> {
        let value: toml::Value = toml::from_str(text).unwrap();
        Entries::deserialize(value)
            .map(|e| e.forward)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn urls_and_tables_with_headers() {
        let f = parse(
            r#"forward = ["https://a/x", { url = "https://b/y", headers = { Authorization = "Bearer s3cr3t", X-Team = "ops" } }]"#,
        )
        .unwrap();
        assert_eq!(f[0].url, "https://a/x");
        assert!(f[0].headers.is_empty());
        assert_eq!(f[1].url, "https://b/y");
        assert!(f[1]
            .headers
            .contains(&("Authorization".into(), "Bearer s3cr3t".into())));
        assert!(f.iter().enumerate().all(|(i, t)| t.check(i).is_ok()));
        assert!(f[1].headers.contains(&("X-Team".into(), "ops".into())));
        // Shown: masked, in debug lines too; serialized as written (a plain URL stays one).
        let shown = toml::to_string(&Entries2 {
            forward: f.iter().map(ForwardTarget::masked).collect(),
        })
        .unwrap();
        assert!(
            !shown.contains("s3cr3t") && shown.contains("Authorization"),
            "{shown}"
        );
        assert!(!format!("{:?}", f[1]).contains("s3cr3t"));
        let again = toml::to_string(&Entries2 { forward: f.clone() }).unwrap();
        assert_eq!(parse(&again).unwrap(), f, "{again}");
    }

    #[derive(Serialize)]
    struct Entries2 {
        forward: Vec<ForwardTarget>,
    }

    #[test]
    fn bad_entries_are_named_and_values_never_quoted() {
        for (text, want) in [
            ("forward = [1]", "a forward entry is a URL string"),
            (r#"forward = [{ headers = {} }]"#, "needs a url"),
            (
                r#"forward = [{ url = "https://a", header = {} }]"#,
                "not \"header\"",
            ),
            (
                r#"forward = [{ url = "https://a", headers = "Bearer s3cr3t" }]"#,
                "must be a table",
            ),
            (
                r#"forward = [{ url = "https://a", headers = { X = 5 } }]"#,
                "must be a string",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let cases = [
            (
                "Connection",
                "close",
                "forward[0].headers.Connection",
                "hop-by-hop",
            ),
            (
                "transfer-encoding",
                "chunked",
                "forward[0].headers.transfer-encoding",
                "hop-by-hop",
            ),
            ("Host", "evil.example", "forward[0].headers.Host", "URL"),
            (
                "Content-Length",
                "5",
                "forward[0].headers.Content-Length",
                "body",
            ),
            (
                "Content-Type",
                "text/plain",
                "forward[0].headers.Content-Type",
                "relayed unchanged",
            ),
            ("Bad Name", "x", "forward[0].headers", "not a header name"),
            (
                "X-Token",
                "s3cr3t\r\nX-Evil: 1",
                "forward[0].headers.X-Token",
                "one line",
            ),
        ];
        for (name, value, key, why) in cases {
            let t = ForwardTarget {
                url: "https://a/x".into(),
                headers: vec![(name.into(), value.into())],
            };
            let (at, e) = t.check(0).unwrap_err();
            assert_eq!(at, key, "{name}");
            assert!(e.contains(why), "{name}: {e}");
            assert!(!e.contains("s3cr3t") && !at.contains("s3cr3t"), "{e}");
        }
        let twice = ForwardTarget {
            url: "https://a/x".into(),
            headers: vec![
                ("X-Key".into(), "s3cr3t".into()),
                ("x-key".into(), "s3cr3t".into()),
            ],
        };
        let (at, e) = twice.check(2).unwrap_err();
        assert_eq!(at, "forward[2].headers.x-key");
        assert!(e.contains("twice") && !e.contains("s3cr3t"), "{e}");
    }
}
