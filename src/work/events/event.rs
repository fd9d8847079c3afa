//! Events published on the live stream and their wire (JSON) shapes.

use serde::Serialize;
use serde_json::{Map, Value};

/// One event on the live stream. Each event becomes exactly one JSON text
/// frame; the `type` field discriminates.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A webhook was durably stored: `{"type":"webhook.received","id":..,"source":".."}`
    /// (`source` left out when unknown: a message another node received).
    WebhookReceived { id: i64, source: Option<String> },
    /// A worker extracted an order: `{"type":"order.created","order":{..}}`.
    OrderCreated { order: Value },
    /// A webhook exhausted its retries:
    /// `{"type":"webhook.dead","id":..,"error":".."}`.
    WebhookDead { id: i64, error: String },
    /// A delivery reached its target:
    /// `{"type":"delivery.succeeded","id":..,"target":"<masked>","status":..}`.
    DeliverySucceeded {
        id: i64,
        target: String,
        status: Option<u16>,
    },
    /// Deliveries will not be sent (attempts used up, a permanent error, their target dead):
    /// `{"type":"delivery.dead","id":..,"target":"<masked>","error":"..","count":n}`, one per
    /// target and error in a commit; `id` is the lowest of the `count` deliveries.
    DeliveryDead {
        id: i64,
        target: String,
        error: String,
        count: u64,
    },
    /// Periodic counters. An object's fields are flattened next to
    /// `"type":"stats"` (a `type` key inside it is ignored so it cannot mask
    /// the discriminator); any other value is sent as `{"type":"stats","value":v}`.
    Stats(Value),
}

/// Borrowing wire representation. Internally tagged so `type` is always the
/// first key, which keeps frames easy to eyeball and to `grep` in logs.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Wire<'a> {
    #[serde(rename = "webhook.received")]
    WebhookReceived {
        id: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<&'a str>,
    },
    #[serde(rename = "order.created")]
    OrderCreated { order: &'a Value },
    #[serde(rename = "webhook.dead")]
    WebhookDead { id: i64, error: &'a str },
    #[serde(rename = "delivery.succeeded")]
    DeliverySucceeded {
        id: i64,
        target: &'a str,
        status: Option<u16>,
    },
    #[serde(rename = "delivery.dead")]
    DeliveryDead {
        id: i64,
        target: &'a str,
        error: &'a str,
        count: u64,
    },
    #[serde(rename = "stats")]
    StatsFields(&'a Map<String, Value>),
    #[serde(rename = "stats")]
    StatsValue { value: &'a Value },
}

impl Event {
    /// Serialize to the JSON shape clients read (`docs/operations.md` lists the events).
    ///
    /// Called once per event by the broadcaster thread (never on the publish
    /// path), and the resulting string is shared by all clients.
    pub fn to_json(&self) -> String {
        let stripped;
        let wire = match self {
            Event::WebhookReceived { id, source } => Wire::WebhookReceived {
                id: *id,
                source: source.as_deref(),
            },
            Event::OrderCreated { order } => Wire::OrderCreated { order },
            Event::WebhookDead { id, error } => Wire::WebhookDead { id: *id, error },
            Event::DeliverySucceeded { id, target, status } => Wire::DeliverySucceeded {
                id: *id,
                target,
                status: *status,
            },
            Event::DeliveryDead {
                id,
                target,
                error,
                count,
            } => Wire::DeliveryDead {
                id: *id,
                target,
                error,
                count: *count,
            },
            Event::Stats(Value::Object(map)) if map.contains_key("type") => {
                stripped = map
                    .iter()
                    .filter(|(k, _)| k.as_str() != "type")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Map<String, Value>>();
                Wire::StatsFields(&stripped)
            }
            Event::Stats(Value::Object(map)) => Wire::StatsFields(map),
            Event::Stats(value) => Wire::StatsValue { value },
        };
        // Only string keys, integers, strings and `Value`s are involved, none
        // of which can fail to serialize.
        serde_json::to_string(&wire).expect("event serialization is infallible")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_received_shape() {
        let ev = Event::WebhookReceived {
            id: 42,
            source: None,
        };
        assert_eq!(ev.to_json(), r#"{"type":"webhook.received","id":42}"#);
        let ev = Event::WebhookReceived {
            id: 43,
            source: Some("shopify".into()),
        };
        assert_eq!(
            ev.to_json(),
            r#"{"type":"webhook.received","id":43,"source":"shopify"}"#
        );
    }

    #[test]
    fn order_created_shape() {
        let ev = Event::OrderCreated {
            order: json!({"total": "12.50", "currency": "EUR"}),
        };
        assert_eq!(
            ev.to_json(),
            r#"{"type":"order.created","order":{"currency":"EUR","total":"12.50"}}"#
        );
    }

    #[test]
    fn webhook_dead_shape_escapes_error() {
        let ev = Event::WebhookDead {
            id: -7,
            error: "bad \"json\"\n".into(),
        };
        assert_eq!(
            ev.to_json(),
            r#"{"type":"webhook.dead","id":-7,"error":"bad \"json\"\n"}"#
        );
    }

    #[test]
    fn delivery_dead_shape_says_how_many() {
        let ev = Event::DeliveryDead {
            id: 7,
            target: "https://discord.com/api/webhooks/1/***".into(),
            error: "target dead: 404".into(),
            count: 3,
        };
        assert_eq!(
            ev.to_json(),
            r#"{"type":"delivery.dead","id":7,"target":"https://discord.com/api/webhooks/1/***","error":"target dead: 404","count":3}"#
        );
    }

    #[test]
    fn stats_object_is_flattened() {
        let ev = Event::Stats(json!({"received": 3, "queue_depth": 0}));
        assert_eq!(
            ev.to_json(),
            r#"{"type":"stats","queue_depth":0,"received":3}"#
        );
    }

    #[test]
    fn stats_type_key_cannot_mask_discriminator() {
        let ev = Event::Stats(json!({"type": "evil", "n": 1}));
        assert_eq!(ev.to_json(), r#"{"type":"stats","n":1}"#);
    }

    #[test]
    fn stats_empty_and_non_object() {
        assert_eq!(Event::Stats(json!({})).to_json(), r#"{"type":"stats"}"#);
        assert_eq!(
            Event::Stats(json!(5)).to_json(),
            r#"{"type":"stats","value":5}"#
        );
        assert_eq!(
            Event::Stats(Value::Null).to_json(),
            r#"{"type":"stats","value":null}"#
        );
    }

    #[test]
    fn output_is_valid_json_with_type_first() {
        for ev in [
            Event::WebhookReceived {
                id: 1,
                source: None,
            },
            Event::OrderCreated { order: json!(null) },
            Event::WebhookDead {
                id: 1,
                error: String::new(),
            },
            Event::Stats(json!({"a": [1, 2]})),
        ] {
            let s = ev.to_json();
            assert!(s.starts_with(r#"{"type":""#), "{s}");
            let _: Value = serde_json::from_str(&s).unwrap();
        }
    }
}
