//! Which commits the live event stream hears about. Best effort: publishing never blocks and
//! an order is serialised only when someone is listening.

use crate::store::{DeadDeliveries, DeliveryNext, OpOutcome, OrderChange, WriteOp};
use crate::work::events::{Event, EventSink};

pub struct EventPublisher {
    sink: EventSink,
}

impl EventPublisher {
    pub fn new(sink: EventSink) -> EventPublisher {
        EventPublisher { sink }
    }

    /// The deliveries a batch made dead, however they died: one event per target and error,
    /// with how many, so a target that dies with a long queue is one event, not thousands.
    pub fn deliveries_died(&self, died: &[DeadDeliveries]) {
        for d in died {
            self.sink.publish(Event::DeliveryDead {
                id: d.first_id,
                target: d.label.clone(),
                error: d.error.clone(),
                count: d.count,
            });
        }
    }

    pub fn committed(&self, op: &WriteOp, outcome: &OpOutcome) {
        match (op, outcome) {
            (
                WriteOp::Append(m),
                OpOutcome::Appended {
                    id,
                    duplicate: false,
                },
            ) => self.sink.publish(Event::WebhookReceived {
                id: *id,
                source: Some(m.source.clone()),
            }),
            (
                WriteOp::Complete { .. },
                OpOutcome::Completed {
                    order: Some(OrderChange::Created(order)),
                },
            ) if self.sink.has_clients() => self.sink.publish(Event::OrderCreated {
                order: serde_json::to_value(order.as_ref()).unwrap_or_default(),
            }),
            (WriteOp::Dead { id, error, .. }, OpOutcome::Changed(_)) => {
                self.sink.publish(Event::WebhookDead {
                    id: *id,
                    error: error.clone(),
                })
            }
            (
                WriteOp::DeliveryOutcome {
                    id,
                    result,
                    next: DeliveryNext::Delivered,
                    ..
                },
                OpOutcome::DeliveryRecorded { label },
            ) => self.sink.publish(Event::DeliverySucceeded {
                id: *id,
                target: label.clone(),
                status: result.status,
            }),
            _ => {}
        }
    }
}
