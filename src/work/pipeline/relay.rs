//! Which commits the relay hears about: a committed delivery (with its message, or on its
//! own) wakes the relay's scheduler for its target; an operator's retry or discard makes it
//! read the owed targets again. The per-target figures move here too.

use std::sync::Arc;

use crate::base::mask::mask_target;
use crate::store::{DeliveryNext, OpOutcome, WriteOp};
use crate::work::relay::RelayWake;
use crate::work::stats::LiveStats;

pub struct RelayHandoff {
    wake: RelayWake,
    live: Arc<LiveStats>,
}

impl RelayHandoff {
    pub fn new(wake: RelayWake, live: Arc<LiveStats>) -> RelayHandoff {
        RelayHandoff { wake, live }
    }

    pub fn committed(&self, op: &WriteOp, outcome: &OpOutcome) {
        let owed = |target: &str| {
            self.live
                .relay
                .update_target(&mask_target(target), |t| t.pending += 1);
        };
        match (op, outcome) {
            (
                WriteOp::Append(m),
                OpOutcome::Appended {
                    duplicate: false, ..
                },
            ) => {
                for d in &m.deliveries {
                    owed(&d.target);
                    self.wake.owed(&d.target, d.kind);
                }
            }
            (WriteOp::Deliver(d), OpOutcome::DeliveryQueued { .. }) => {
                owed(&d.target);
                self.wake.owed(&d.target, d.kind);
            }
            (
                WriteOp::DeliveryOutcome { next, .. },
                OpOutcome::DeliveryRecorded { label, also_dead },
            ) => {
                let done = match next {
                    DeliveryNext::RetryAt(_) => 0,
                    _ => 1 + also_dead.len() as i64,
                };
                self.live.relay.update_target(label, |t| t.pending -= done);
            }
            (
                WriteOp::RetryDeliveries { .. } | WriteOp::DiscardDelivery { .. },
                OpOutcome::Changed(n),
            ) if *n > 0 => self.wake.rescan(),
            _ => {}
        }
    }
}
