//! The order extracted from a webhook body, in the shape it is stored and read back.
//!
//! It lives with the store because the store keeps one column per field; the parser in
//! `orders` produces it and the store never needs to know how. Plain data (serde both ways)
//! with money as integer minor units and an ISO 4217 code — never a float — to keep sums and
//! comparisons exact.

use std::collections::BTreeMap;

/// One checkout, as the order parser extracts it from a webhook body.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// The shop's order number, markdown removed but otherwise as sent
    /// (`#1001-88231` keeps its `#`). The one field an order cannot lack.
    pub order_number: String,
    pub product: Option<String>,
    /// Amount in minor units of `currency` (JPY/KRW have no minor unit:
    /// `¥12,000` -> 12000).
    pub amount_cents: Option<i64>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    pub email: Option<String>,
    pub size: Option<String>,
    pub site: Option<String>,
    /// Defaults to 1 when the body does not say.
    pub quantity: i64,
    pub profile: Option<String>,
    /// Embed title (or author name when there is no title).
    pub title: Option<String>,
    /// Every labelled value found: label as written (cleaned) -> cleaned
    /// value. Keeps what the typed fields do not cover (mode, proxy, delay…).
    pub fields: BTreeMap<String, String>,
}
