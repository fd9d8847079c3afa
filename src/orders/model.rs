//! An order as extracted from a webhook.
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub order_number: String,
    pub product: Option<String>,
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub email: Option<String>,
    pub size: Option<String>,
    pub site: Option<String>,
    pub quantity: i64,
    pub profile: Option<String>,
    pub title: Option<String>,
    pub fields: BTreeMap<String, String>,
}
