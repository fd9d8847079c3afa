//! The deliveries' vocabulary: a stored message (or an alert) sent on to a target URL, one
//! row per message and target, each with its own attempts. Plain data: no SQL, no threads.

use serde::Serialize;

/// How a target is spoken to: a Discord webhook (its rate-limit headers, its error codes, its
/// `User-Agent`) or any other HTTP endpoint (a plain POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Discord,
    Http,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Discord => "discord",
            TargetKind::Http => "http",
        }
    }

    pub fn parse(s: &str) -> TargetKind {
        if s == "discord" {
            TargetKind::Discord
        } else {
            TargetKind::Http
        }
    }
}

/// Where a delivery is. `sending` is stored while a node has the request in flight; the API
/// shows it as `pending` (it is still owed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
    Discarded,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Discarded => "discarded",
        }
    }

    /// A stored state; `sending` is a `pending` delivery with its request in flight.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" | "sending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            "discarded" => Some(DeliveryState::Discarded),
            _ => None,
        }
    }
}

/// Extra request headers as a delivery stores them: a JSON object text (`{}` for none).
pub fn headers_json(headers: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// A delivery to create: with a message (`body: None`, the message's own body is sent) in the
/// message's commit, or on its own (`body: Some`, e.g. an alert).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// The full URL, token included (stored; masked wherever it is shown).
    pub target: String,
    pub kind: TargetKind,
    pub content_type: Option<String>,
    /// Extra request headers as a JSON object text (`{}` for none).
    pub headers_json: String,
    pub body: Option<Vec<u8>>,
}

/// A delivery in a sender's hands: everything its request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryTicket {
    pub id: i64,
    pub message_id: Option<i64>,
    pub target: String,
    pub kind: TargetKind,
    pub content_type: Option<String>,
    pub headers_json: String,
    pub body: Vec<u8>,
    /// This attempt's number (attempts counted when the attempt starts).
    pub attempt: u32,
}

/// What a target's take found (see `WriteOp::TakeDeliveries`).
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// The deliveries to send now, oldest first (none: nothing is due).
    Tickets(Vec<DeliveryTicket>),
    /// The head of the queue waits for its backoff until this time (unix ms).
    DueAt(i64),
    /// Another node holds the target's lease.
    HeldElsewhere,
    /// The target is dead: nothing is sent until an operator retries.
    TargetDead,
}

/// How one attempt ended, as recorded with the delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// One delivery as listed by the admin API, its target masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverySummary {
    pub id: i64,
    pub message_id: Option<i64>,
    pub target: String,
    pub kind: TargetKind,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// One request made for a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub summary: DeliverySummary,
    /// Every request made, oldest first, `429`s included (`attempts` counts the others: a rate
    /// limit uses none of `relay.max_attempts`).
    #[serde(rename = "requests")]
    pub attempts_made: Vec<DeliveryAttempt>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    pub state: Option<DeliveryState>,
    /// The masked target as listed (`https://discord.com/api/webhooks/1/***`).
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::headers_json;

    #[test]
    fn headers_are_stored_as_one_json_object() {
        assert_eq!(headers_json(&[]), "{}");
        let stored = headers_json(&[
            ("X-Team".into(), "ops".into()),
            ("Authorization".into(), "Bearer \"q\"".into()),
        ]);
        let back: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(back["X-Team"], "ops");
        assert_eq!(back["Authorization"], "Bearer \"q\"");
    }
}
