//! Which commits the live event stream hears about. Best effort: publishing never blocks and
//! an order is serialised only when someone is listening.

use crate::store::{DeliveryNext, OpOutcome, OrderChange, WriteOp};
use crate::work::events::{Event, EventSink};

pub struct EventPublisher {
    sink: EventSink,
}

impl EventPublisher {
    pub fn new(sink: EventSink) -> EventPublisher {
        EventPublisher { sink }
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
                    id, result, next, ..
                },
                OpOutcome::DeliveryRecorded { label, also_dead },
            ) => {
                let error = result.error.clone().unwrap_or_default();
                match next {
                    DeliveryNext::Delivered => self.sink.publish(Event::DeliverySucceeded {
                        id: *id,
                        target: label.clone(),
                        status: result.status,
                    }),
                    DeliveryNext::RetryAt(_) | DeliveryNext::RateLimited(_) => {}
                    DeliveryNext::Dead | DeliveryNext::TargetDead { .. } => {
                        for dead in std::iter::once(id).chain(also_dead) {
                            self.sink.publish(Event::DeliveryDead {
                                id: *dead,
                                target: label.clone(),
                                error: error.clone(),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
