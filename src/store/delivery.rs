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

/// Hides a target URL's secret: the token segment of a Discord webhook URL
/// (`/api/webhooks/{id}/{token}`), the query and any user info of other URLs.
pub fn mask_target(url: &str) -> String {
    let (without_query, had_query) = match url.split_once('?') {
        Some((u, _)) => (u, true),
        None => (url, false),
    };
    let (scheme, rest) = match without_query.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, without_query),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_string(),
    };
    let mut segments: Vec<String> = rest.split('/').map(str::to_string).collect();
    if let Some(i) = segments.iter().position(|s| s == "webhooks") {
        if segments.get(i + 2).is_some_and(|t| !t.is_empty()) {
            segments[i + 2] = "***".into();
            segments.truncate(i + 3);
        }
    } else if let Some(last) = segments.iter().skip(1).rposition(|s| !s.is_empty()) {
        // Other URLs keep their secret last too: a Slack webhook's, an ntfy topic, a
        // Zapier or IFTTT key. The segments before it stay, so an operator still tells
        // targets apart.
        segments[last + 1] = "***".into();
    }
    let mut out = segments.join("/");
    if let Some(s) = scheme {
        out = format!("{s}://{out}");
    }
    if had_query {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_target;

    #[test]
    fn tokens_never_survive_masking() {
        assert_eq!(
            mask_target("https://discord.com/api/webhooks/123/SeCrEt?thread_id=5"),
            "https://discord.com/api/webhooks/123/***?***"
        );
        assert_eq!(
            mask_target("http://127.0.0.1:9/api/v10/webhooks/1/tok/slack"),
            "http://127.0.0.1:9/api/v10/webhooks/1/***"
        );
        assert_eq!(
            mask_target("https://user:pw@host/x"),
            "https://***@host/***"
        );
        assert_eq!(mask_target("https://h/hook"), "https://h/***");
        assert_eq!(
            mask_target("https://hooks.slack.com/services/T0/B0/SeCrEt"),
            "https://hooks.slack.com/services/T0/B0/***"
        );
        assert_eq!(
            mask_target("https://ntfy.sh/my-topic/"),
            "https://ntfy.sh/***/"
        );
        assert_eq!(mask_target("https://h"), "https://h");
    }
}
