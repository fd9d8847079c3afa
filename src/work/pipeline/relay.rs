//! Which commits the relay hears about: a committed delivery (with its message, or on its
//! own) wakes the relay's scheduler for its target; an operator's retry or discard makes it
//! read the owed targets again. (The per-target figures move with the batch's
//! [`CounterDelta`](crate::store::CounterDelta), like every other figure.)

use crate::store::{OpOutcome, WriteOp};
use crate::work::relay::RelayWake;

pub struct RelayHandoff {
    wake: RelayWake,
}

impl RelayHandoff {
    pub fn new(wake: RelayWake) -> RelayHandoff {
        RelayHandoff { wake }
    }

    pub fn committed(&self, op: &WriteOp, outcome: &OpOutcome) {
        match (op, outcome) {
            (
                WriteOp::Append(m),
                OpOutcome::Appended {
                    duplicate: false, ..
                },
            ) => {
                for d in &m.deliveries {
                    self.wake.owed(&d.target, d.kind);
                }
            }
            (WriteOp::Deliver(d), OpOutcome::DeliveryQueued { .. }) => {
                self.wake.owed(&d.target, d.kind);
            }
            (
                WriteOp::RetryDeliveries { .. } | WriteOp::DiscardDelivery { .. },
                OpOutcome::Changed(n),
            ) if *n > 0 => self.wake.rescan(),
            _ => {}
        }
    }
}
