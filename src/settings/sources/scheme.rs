//! The signature schemes senders use, checked before anything is stored, and the same
//! schemes run the other way for `hookvault sign`. Every comparison of a signature is
//! constant-time (`Mac::verify_slice`), and every secret is tried, so a sender can be moved to
//! a new secret while the old one still works.
//!
//! | scheme | header(s) | key | signed |
//! |---|---|---|---|
//! | standard-webhooks | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...` (or `svix-*`) | base64 after `whsec_`, decoded | `id.timestamp.body` |
//! | github | `X-Hub-Signature-256: sha256=<hex>` | the secret's bytes | the body |
//! | stripe | `Stripe-Signature: t=<ts>,v1=<hex>[,v1=..][,v0=..]` | the secret's bytes, `whsec_` included | `t.body` |
//! | shopify | `X-Shopify-Hmac-Sha256: <base64>` | the secret's bytes | the body |
//! | hmac-sha256 | a configured header, hex or base64, an optional prefix | the secret's bytes | the body |

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::reason::{Reason, Refused};

type HmacSha256 = Hmac<Sha256>;

/// The schemes by their configuration name (`verify = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    None,
    StandardWebhooks,
    Github,
    Stripe,
    Shopify,
    HmacSha256,
}

impl SchemeKind {
    pub const ALL: [SchemeKind; 6] = [
        SchemeKind::None,
        SchemeKind::StandardWebhooks,
        SchemeKind::Github,
        SchemeKind::Stripe,
        SchemeKind::Shopify,
        SchemeKind::HmacSha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SchemeKind::None => "none",
            SchemeKind::StandardWebhooks => "standard-webhooks",
            SchemeKind::Github => "github",
            SchemeKind::Stripe => "stripe",
            SchemeKind::Shopify => "shopify",
            SchemeKind::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(name: &str) -> Option<SchemeKind> {
        SchemeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the scheme signs a timestamp (and so uses `tolerance_s`).
    pub fn timestamped(self) -> bool {
        matches!(self, SchemeKind::StandardWebhooks | SchemeKind::Stripe)
    }
}

/// How the generic scheme's signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }
}

/// Where the generic scheme finds its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericHeader {
    pub name: String,
    pub encoding: Encoding,
    pub prefix: String,
}

/// The request's headers as the verifier reads them (names without regard to case).
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What a verified request says about itself: the scheme's delivery id, the dedupe key when
/// the sender gives no `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    pub delivery_id: Option<String>,
}

/// One source's scheme with its keys, decoded once at start. Its `Debug` leaves the keys out.
#[derive(Clone)]
pub struct Verifier {
    kind: SchemeKind,
    keys: Vec<Vec<u8>>,
    tolerance_s: i64,
    generic: GenericHeader,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kind", &self.kind)
            .field("keys", &self.keys.len())
            .field("tolerance_s", &self.tolerance_s)
            .field("generic", &self.generic)
            .finish()
    }
}

/// Standard Webhooks' header names, then Svix's (the same scheme under its first name).
const STANDARD_ID: [&str; 2] = ["webhook-id", "svix-id"];
const STANDARD_TIMESTAMP: [&str; 2] = ["webhook-timestamp", "svix-timestamp"];
const STANDARD_SIGNATURE: [&str; 2] = ["webhook-signature", "svix-signature"];

impl Verifier {
    /// `secrets` as configured; an error names what is wrong with which one (by position,
    /// never by value).
    pub fn new(
        kind: SchemeKind,
        secrets: &[String],
        tolerance_s: u64,
        generic: GenericHeader,
    ) -> Result<Verifier, String> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| match kind {
                SchemeKind::StandardWebhooks => {
                    standard_key(s).map_err(|why| format!("secret {i}: {why}"))
                }
                _ => Ok(s.as_bytes().to_vec()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            kind,
            keys,
            tolerance_s: tolerance_s.min(i64::MAX as u64) as i64,
            generic,
        })
    }

    pub fn kind(&self) -> SchemeKind {
        self.kind
    }

    /// Checks a request; `now_s` is this host's clock in Unix seconds.
    pub fn verify(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now_s: i64,
    ) -> Result<Verified, Refused> {
        match self.kind {
            SchemeKind::None => Ok(Verified { delivery_id: None }),
            SchemeKind::StandardWebhooks => self.standard(headers, body, now_s),
            SchemeKind::Github => {
                let given = required(headers, "X-Hub-Signature-256")?;
                let Some(hex) = given.strip_prefix("sha256=") else {
                    return Err(invalid(
                        "X-Hub-Signature-256 does not start with sha256= (GitHub's format is sha256=<hex>)",
                    ));
                };
                let signature = hex_decode(hex).ok_or_else(|| {
                    invalid("X-Hub-Signature-256 is not sha256= followed by hex digits")
                })?;
                self.expect_match(&[signature], &[body], "X-Hub-Signature-256")?;
                Ok(Verified {
                    delivery_id: delivery_header(headers, "X-GitHub-Delivery"),
                })
            }
            SchemeKind::Stripe => self.stripe(headers, body, now_s),
            SchemeKind::Shopify => {
                let given = required(headers, "X-Shopify-Hmac-Sha256")?;
                let signature = BASE64.decode(given.trim()).map_err(|_| {
                    invalid(
                        "X-Shopify-Hmac-Sha256 is not base64 (Shopify sends the HMAC in base64)",
                    )
                })?;
                self.expect_match(&[signature], &[body], "X-Shopify-Hmac-Sha256")?;
                Ok(Verified {
                    delivery_id: delivery_header(headers, "X-Shopify-Webhook-Id"),
                })
            }
            SchemeKind::HmacSha256 => {
                let g = &self.generic;
                let given = required(headers, &g.name)?.trim();
                let Some(encoded) = given.strip_prefix(g.prefix.as_str()) else {
                    return Err(invalid(format!(
                        "{} does not start with {:?} (signature_prefix)",
                        g.name, g.prefix
                    )));
                };
                let signature = match g.encoding {
                    Encoding::Hex => hex_decode(encoded),
                    Encoding::Base64 => BASE64.decode(encoded).ok(),
                };
                let Some(signature) = signature.filter(|s| s.len() == 32) else {
                    return Err(invalid(format!(
                        "{} is not an HMAC-SHA256 in {} (signature_encoding)",
                        g.name,
                        match g.encoding {
                            Encoding::Hex => "hex",
                            Encoding::Base64 => "base64",
                        }
                    )));
                };
                self.expect_match(&[signature], &[body], &g.name)?;
                Ok(Verified::default())
            }
        }
    }

    fn standard(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now_s: i64,
    ) -> Result<Verified, Refused> {
        let id = first_of(headers, &STANDARD_ID)?;
        let timestamp = first_of(headers, &STANDARD_TIMESTAMP)?;
        let list = first_of(headers, &STANDARD_SIGNATURE)?;
        self.check_time(timestamp, "webhook-timestamp", now_s)?;
        let signatures: Vec<Vec<u8>> = list
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| BASE64.decode(b64).ok())
            .collect();
        if signatures.is_empty() {
            return Err(invalid(
                "webhook-signature holds no v1,<base64> entry (Standard Webhooks' format)",
            ));
        }
        let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        self.expect_match(&signatures, &signed, "webhook-signature")?;
        Ok(Verified {
            delivery_id: Some(id.to_string()),
        })
    }

    fn stripe(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now_s: i64,
    ) -> Result<Verified, Refused> {
        let header = required(headers, "Stripe-Signature")?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in header.split(',') {
            match item.trim().split_once('=') {
                Some(("t", t)) => timestamp = Some(t),
                Some(("v1", hex)) => signatures.extend(hex_decode(hex)),
                _ => {}
            }
        }
        let Some(timestamp) = timestamp else {
            return Err(invalid(
                "Stripe-Signature has no t=<timestamp> (Stripe's format is t=..,v1=..)",
            ));
        };
        if signatures.is_empty() {
            return Err(invalid(
                "Stripe-Signature has no v1=<hex> signature (v0 is Stripe's test scheme and is not accepted)",
            ));
        }
        self.check_time(timestamp, "Stripe-Signature t=", now_s)?;
        self.expect_match(
            &signatures,
            &[timestamp.as_bytes(), b".", body],
            "Stripe-Signature",
        )?;
        Ok(Verified {
            delivery_id: stripe_event_id(body),
        })
    }

    /// Both directions: an old timestamp is a replay, one in the future a clock to fix.
    fn check_time(&self, timestamp: &str, what: &str, now_s: i64) -> Result<(), Refused> {
        let Ok(ts) = timestamp.trim().parse::<i64>() else {
            return Err(invalid(format!(
                "{what} {timestamp:?} is not a Unix time in seconds"
            )));
        };
        let off = now_s.saturating_sub(ts);
        if off.unsigned_abs() > self.tolerance_s.unsigned_abs() {
            let when = if off > 0 { "old" } else { "in the future" };
            return Err(Refused::new(
                Reason::TimestampOutOfTolerance,
                format!(
                    "{what} {ts} is {} s {when}, beyond tolerance_s = {}: check both clocks (NTP), or this is a replayed request",
                    off.unsigned_abs(),
                    self.tolerance_s
                ),
            ));
        }
        Ok(())
    }

    /// Passes when any given signature is the HMAC of `signed` under any key. Every pair is
    /// compared in constant time.
    fn expect_match(
        &self,
        signatures: &[Vec<u8>],
        signed: &[&[u8]],
        header: &str,
    ) -> Result<(), Refused> {
        for key in &self.keys {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any size");
            for part in signed {
                mac.update(part);
            }
            if signatures
                .iter()
                .any(|s| mac.clone().verify_slice(s).is_ok())
            {
                return Ok(());
            }
        }
        Err(invalid(format!(
            "{header} matches none of the source's {} secret(s): check the secret configured at the sender, and that nothing between (a proxy, a framework) changed the body",
            self.keys.len()
        )))
    }

    /// The headers a sender would send for `body`, signed with the first secret. `id` and
    /// `timestamp` default to a fresh id and `now_s`.
    pub fn sign(
        &self,
        body: &[u8],
        id: Option<&str>,
        timestamp: Option<i64>,
        now_s: i64,
    ) -> Vec<(String, String)> {
        let Some(key) = self.keys.first() else {
            return Vec::new();
        };
        let id = id.map(str::to_string).unwrap_or_else(fresh_id);
        let ts = timestamp.unwrap_or(now_s).to_string();
        let mac = |parts: &[&[u8]]| {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any size");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        };
        let h = |name: &str, value: String| (name.to_string(), value);
        match self.kind {
            SchemeKind::None => Vec::new(),
            SchemeKind::StandardWebhooks => {
                let sig = mac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                vec![
                    h("webhook-id", id),
                    h("webhook-timestamp", ts),
                    h("webhook-signature", format!("v1,{}", BASE64.encode(sig))),
                ]
            }
            SchemeKind::Github => vec![
                h("X-GitHub-Delivery", id),
                h(
                    "X-Hub-Signature-256",
                    format!("sha256={}", hex_encode(&mac(&[body]))),
                ),
            ],
            SchemeKind::Stripe => {
                let sig = mac(&[ts.as_bytes(), b".", body]);
                vec![h(
                    "Stripe-Signature",
                    format!("t={ts},v1={}", hex_encode(&sig)),
                )]
            }
            SchemeKind::Shopify => vec![
                h("X-Shopify-Webhook-Id", id),
                h("X-Shopify-Hmac-Sha256", BASE64.encode(mac(&[body]))),
            ],
            SchemeKind::HmacSha256 => {
                let sig = mac(&[body]);
                let encoded = match self.generic.encoding {
                    Encoding::Hex => hex_encode(&sig),
                    Encoding::Base64 => BASE64.encode(sig),
                };
                vec![h(
                    &self.generic.name,
                    format!("{}{encoded}", self.generic.prefix),
                )]
            }
        }
    }
}

/// A Standard Webhooks secret: `whsec_` and base64 (the prefix is optional, as in the
/// reference libraries).
fn standard_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err("not a Standard Webhooks secret: expected whsec_ followed by base64 (as the sender's dashboard shows it)".into()),
    }
}

fn required<'h>(headers: &'h (impl Headers + ?Sized), name: &str) -> Result<&'h str, Refused> {
    headers.header(name).ok_or_else(|| {
        Refused::new(
            Reason::SignatureMissing,
            format!("no {name} header: the sender does not sign with this source's scheme, or something between drops the header"),
        )
    })
}

/// The first of a scheme's alternative header names that is present.
fn first_of<'h>(
    headers: &'h (impl Headers + ?Sized),
    names: &[&str; 2],
) -> Result<&'h str, Refused> {
    names
        .iter()
        .find_map(|n| headers.header(n))
        .ok_or_else(|| {
            Refused::new(
                Reason::SignatureMissing,
                format!(
                    "no {} (or {}) header: a Standard Webhooks sender sends webhook-id, webhook-timestamp and webhook-signature",
                    names[0], names[1]
                ),
            )
        })
}

fn invalid(message: impl Into<String>) -> Refused {
    Refused::new(Reason::SignatureInvalid, message)
}

fn delivery_header(headers: &(impl Headers + ?Sized), name: &str) -> Option<String> {
    headers
        .header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A Stripe event's `id` (`evt_...`), read only once the signature has passed.
fn stripe_event_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        id: Option<String>,
    }
    serde_json::from_slice::<Event>(body)
        .ok()
        .and_then(|e| e.id)
        .filter(|id| !id.is_empty())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A delivery id for `hookvault sign` when none is given: `msg_` and 16 hex digits from the
/// standard library's per-process random hasher keys and the clock.
fn fresh_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("msg_{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const STD_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const STD_TS: i64 = 1649367553;
    const STD_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const STD_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn generic() -> GenericHeader {
        GenericHeader {
            name: "X-Signature".into(),
            encoding: Encoding::Hex,
            prefix: String::new(),
        }
    }

    fn verifier(kind: SchemeKind, secrets: &[&str]) -> Verifier {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        Verifier::new(kind, &secrets, 300, generic()).unwrap()
    }

    fn code(r: Result<Verified, Refused>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.reason.code(),
        }
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        let v = verifier(SchemeKind::StandardWebhooks, &[WHSEC]);
        let ts = STD_TS.to_string();
        let headers = [
            ("webhook-id", STD_ID),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", STD_SIG),
        ];
        let ok = v.verify(&headers[..], STD_BODY, STD_TS).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some(STD_ID));
        // The svix-* names carry the same scheme.
        let svix = [
            ("svix-id", STD_ID),
            ("svix-timestamp", ts.as_str()),
            ("svix-signature", STD_SIG),
        ];
        assert_eq!(code(v.verify(&svix[..], STD_BODY, STD_TS)), "ok");
        // sign() reproduces the vector.
        let signed = v.sign(STD_BODY, Some(STD_ID), Some(STD_TS), 0);
        assert_eq!(signed[2], ("webhook-signature".into(), STD_SIG.into()));
    }

    #[test]
    fn standard_webhooks_refusals() {
        let v = verifier(SchemeKind::StandardWebhooks, &[WHSEC]);
        let ts = STD_TS.to_string();
        let with = |sig: &str, body: &[u8], now: i64| {
            let headers = [
                ("webhook-id", STD_ID),
                ("webhook-timestamp", ts.as_str()),
                ("webhook-signature", sig),
            ];
            code(v.verify(&headers[..], body, now))
        };
        assert_eq!(with(STD_SIG, b"{}", STD_TS), "signature_invalid");
        assert_eq!(
            with(STD_SIG, STD_BODY, STD_TS + 301),
            "timestamp_out_of_tolerance"
        );
        assert_eq!(
            with(STD_SIG, STD_BODY, STD_TS - 301),
            "timestamp_out_of_tolerance"
        );
        assert_eq!(with(STD_SIG, STD_BODY, STD_TS + 300), "ok");
        // Only the second entry of the list matches.
        let list = format!("v1,AAAA{} {STD_SIG}", &STD_SIG[7..]);
        assert_eq!(with(&list, STD_BODY, STD_TS), "ok");
        assert_eq!(with("v2,abc", STD_BODY, STD_TS), "signature_invalid");
        let missing = [("webhook-id", STD_ID), ("webhook-timestamp", ts.as_str())];
        assert_eq!(
            code(v.verify(&missing[..], STD_BODY, STD_TS)),
            "signature_missing"
        );
        // Rotation: the old secret second still passes; a wrong one alone does not.
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let rotated = verifier(SchemeKind::StandardWebhooks, &[other, WHSEC]);
        let headers = [
            ("webhook-id", STD_ID),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", STD_SIG),
        ];
        assert_eq!(code(rotated.verify(&headers[..], STD_BODY, STD_TS)), "ok");
        let wrong = verifier(SchemeKind::StandardWebhooks, &[other]);
        assert_eq!(
            code(wrong.verify(&headers[..], STD_BODY, STD_TS)),
            "signature_invalid"
        );
        assert!(Verifier::new(
            SchemeKind::StandardWebhooks,
            &["whsec_not base64!".into()],
            300,
            generic()
        )
        .is_err());
    }

    #[test]
    fn github_documented_example() {
        let v = verifier(SchemeKind::Github, &[GH_SECRET]);
        let headers = [
            ("X-Hub-Signature-256", GH_SIG),
            ("X-GitHub-Delivery", "d-1"),
        ];
        let ok = v.verify(&headers[..], b"Hello, World!", 0).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(
            code(v.verify(&headers[..], b"Hello, World?", 0)),
            "signature_invalid"
        );
        let bare = [("X-Hub-Signature-256", &GH_SIG[7..])];
        assert_eq!(
            code(v.verify(&bare[..], b"Hello, World!", 0)),
            "signature_invalid"
        );
        assert_eq!(
            code(v.verify(&[][..], b"Hello, World!", 0)),
            "signature_missing"
        );
        assert_eq!(v.sign(b"Hello, World!", Some("d-1"), None, 0)[1].1, GH_SIG);
    }

    #[test]
    fn stripe_signs_the_timestamp_and_takes_any_v1() {
        let secret = "whsec_stripe_test_secret";
        let v = verifier(SchemeKind::Stripe, &[secret]);
        let body = br#"{"id":"evt_123","type":"charge.succeeded"}"#;
        let signed = v.sign(body, None, Some(1_700_000_000), 0);
        let header = signed[0].1.clone();
        // Independent of sign(): the key is the secret string, prefix included, signed t.body.
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b"1700000000.");
        mac.update(body);
        let expected = hex_encode(&mac.finalize().into_bytes());
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
        let now = 1_700_000_100;
        let ok = v
            .verify(&[("Stripe-Signature", header.as_str())][..], body, now)
            .unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("evt_123"));
        let second = format!("t=1700000000,v1={},v1={expected},v0=00", "ab".repeat(32));
        let h = [("Stripe-Signature", second.as_str())];
        assert_eq!(code(v.verify(&h[..], body, now)), "ok");
        assert_eq!(
            code(v.verify(&h[..], body, now + 400)),
            "timestamp_out_of_tolerance"
        );
        assert_eq!(code(v.verify(&h[..], b"{}", now)), "signature_invalid");
        let v0_only = [("Stripe-Signature", "t=1700000000,v0=abcd")];
        assert_eq!(code(v.verify(&v0_only[..], body, now)), "signature_invalid");
    }

    #[test]
    fn shopify_and_generic() {
        let v = verifier(SchemeKind::Shopify, &["shpss_secret"]);
        let signed = v.sign(b"{\"a\":1}", Some("w-9"), None, 0);
        let h: Vec<(&str, &str)> = signed
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let ok = v.verify(&h[..], b"{\"a\":1}", 0).unwrap();
        assert_eq!(ok.delivery_id.as_deref(), Some("w-9"));
        // Hex where base64 is expected.
        let mut mac = HmacSha256::new_from_slice(b"shpss_secret").unwrap();
        mac.update(b"{\"a\":1}");
        let hex = hex_encode(&mac.finalize().into_bytes());
        let h = [("X-Shopify-Hmac-Sha256", hex.as_str())];
        assert_eq!(code(v.verify(&h[..], b"{\"a\":1}", 0)), "signature_invalid");

        let b64 = Verifier::new(
            SchemeKind::HmacSha256,
            &["k".into()],
            300,
            GenericHeader {
                name: "X-Sig".into(),
                encoding: Encoding::Base64,
                prefix: "sha256=".into(),
            },
        )
        .unwrap();
        let signed = b64.sign(b"body", None, None, 0);
        assert!(signed[0].1.starts_with("sha256="), "{signed:?}");
        let h = [("x-sig", signed[0].1.as_str())];
        assert_eq!(code(b64.verify(&h[..], b"body", 0)), "ok");
        let as_hex = {
            let mut mac = HmacSha256::new_from_slice(b"k").unwrap();
            mac.update(b"body");
            format!("sha256={}", hex_encode(&mac.finalize().into_bytes()))
        };
        let h = [("X-Sig", as_hex.as_str())];
        assert_eq!(code(b64.verify(&h[..], b"body", 0)), "signature_invalid");
        let no_prefix = [("X-Sig", &signed[0].1[7..])];
        assert_eq!(
            code(b64.verify(&no_prefix[..], b"body", 0)),
            "signature_invalid"
        );
    }

    /// The verification cost per webhook, measured, not asserted (docs/performance.md):
    /// `cargo test --release --lib sources::scheme::tests::verification_cost -- --ignored --nocapture`
    /// Each cell is the fastest of several rounds: on a shared machine the slower rounds
    /// measure the neighbours.
    #[test]
    #[ignore]
    fn verification_cost() {
        use std::time::Instant;
        const ROUNDS: u32 = 9;
        const PER_ROUND: u32 = 2_000;
        let schemes = [
            (SchemeKind::StandardWebhooks, WHSEC),
            (SchemeKind::Github, GH_SECRET),
            (SchemeKind::Stripe, "whsec_stripe"),
            (SchemeKind::Shopify, "shpss_secret"),
            (SchemeKind::HmacSha256, "k"),
        ];
        println!("| scheme | body | 1 secret, passes | 2 secrets, the second passes | refused (wrong signature) |");
        println!("|---|---|---|---|---|");
        for size in [1024usize, 16 * 1024] {
            let body = vec![b'x'; size];
            for (kind, secret) in schemes {
                let one = verifier(kind, &[secret]);
                let headers = one.sign(&body, Some("msg_1"), None, 1_700_000_000);
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                let other = match kind {
                    SchemeKind::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    _ => "another secret",
                };
                let two = verifier(kind, &[other, secret]);
                let wrong = verifier(kind, &[other]);
                let time = |v: &Verifier, expect_ok: bool| {
                    (0..ROUNDS)
                        .map(|_| {
                            let started = Instant::now();
                            for _ in 0..PER_ROUND {
                                let r = v.verify(
                                    &pairs[..],
                                    std::hint::black_box(&body),
                                    1_700_000_000,
                                );
                                assert_eq!(r.is_ok(), expect_ok);
                            }
                            started.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND)
                        })
                        .fold(f64::INFINITY, f64::min)
                };
                println!(
                    "| {} | {} KiB | {:.2} µs | {:.2} µs | {:.2} µs |",
                    kind.as_str(),
                    size / 1024,
                    time(&one, true),
                    time(&two, true),
                    time(&wrong, false)
                );
            }
        }
    }
}
