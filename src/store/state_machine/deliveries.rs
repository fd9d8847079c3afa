//! The deliveries' state machine, written once for every backend beside the messages' (it
//! runs in the same [`Batch`], so a delivery created with its message lands in the message's
//! transaction and moves the same [`CounterDelta`](crate::store::model::CounterDelta)).
//!
//! ```text
//! pending ──take──► sending ──► delivered
//!    ▲                 │  └───► dead ──retry──► pending
//!    └──retry (backoff)┘          └──discard──► discarded
//! ```
//!
//! A target is sent by one node at a time: taking it takes its lease (`relay_targets`), held
//! as long as the node keeps taking; a lease that ran out (a node killed) is taken over and
//! what that node was sending is owed again. A dead target takes no requests: its owed
//! deliveries die with it, and new ones are created dead, until an operator retries.

use super::sql;
use super::Batch;
use crate::base::mask::mask_target;
use crate::store::delivery::{AttemptResult, DeliveryTicket, NewDelivery, Taken, TargetKind};
use crate::store::error::StoreResult;
use crate::store::model::{DeadDeliveries, DeliveryNext, Lease, OpOutcome};
use crate::store::sql::{Cell, Value};

impl Batch<'_> {
    /// Creates a delivery (with its message's id, or on its own); its id.
    pub(super) fn insert_delivery(
        &mut self,
        message_id: Option<i64>,
        d: &NewDelivery,
    ) -> StoreResult<i64> {
        let now = self.clock.ms;
        let dead = self
            .tx
            .query_row(sql::TARGET_DEAD_REASON, &[(&d.target).into()])?
            .map(|r| format!("target dead: {}", r.text(0)));
        let (state, finished) = match dead {
            Some(_) => ("dead", Some(now)),
            None => ("pending", None),
        };
        let label = mask_target(&d.target);
        let body = d.body.as_deref().map_or(Value::Null, Value::Blob);
        let id = self
            .tx
            .insert(
                sql::INSERT_DELIVERY,
                &[
                    message_id.into(),
                    (&d.target).into(),
                    d.kind.as_str().into(),
                    (&d.content_type).into(),
                    (&d.headers_json).into(),
                    body,
                    state.into(),
                    now.into(),
                    finished.into(),
                    (&dead).into(),
                    (&label).into(),
                ],
            )?
            .unwrap_or(0);
        match &dead {
            // A dead letter from the start: never owed, so never in the pending figures.
            Some(why) => self.died(&label, why, id),
            None => self.owe(&label, 1),
        }
        Ok(id)
    }

    /// Delivery `id` to target `label` (masked) became dead with `error`: the one place every
    /// way a delivery dies is counted (the gauge, and the batch's list the `delivery.dead`
    /// events and `hookvault_deliveries_total{result="dead"}` are made from).
    fn died(&mut self, label: &str, error: &str, id: i64) {
        self.d.deliveries_dead += 1;
        let died = &mut self.d.deliveries_died;
        match died
            .iter_mut()
            .find(|d| d.label == label && d.error == error)
        {
            Some(d) => {
                d.first_id = d.first_id.min(id);
                d.count += 1;
            }
            None => died.push(DeadDeliveries {
                label: label.to_string(),
                error: error.to_string(),
                first_id: id,
                count: 1,
            }),
        }
    }

    /// The owed figures move by `n`: the total and the target's (`label`, its masked URL).
    fn owe(&mut self, label: &str, n: i64) {
        if n == 0 {
            return;
        }
        self.d.deliveries_owed += n;
        *self.d.owed_by_target.entry(label.to_string()).or_default() += n;
    }

    /// A dead target's owed deliveries become dead letters (`why` their error).
    fn kill_owed(&mut self, target: &str, why: &str) -> StoreResult<()> {
        let now = self.clock.ms;
        let label = mask_target(target);
        for row in self.tx.query(sql::OWED_BY_TARGET, &[target.into()])? {
            let id = row.int(0);
            self.tx
                .execute(sql::DEAD_WITH_TARGET, &[id.into(), now.into(), why.into()])?;
            self.owe(&label, -1);
            self.died(&label, why, id);
        }
        Ok(())
    }

    pub(super) fn deliver(&mut self, d: &NewDelivery) -> StoreResult<OpOutcome> {
        let id = self.insert_delivery(None, d)?;
        Ok(OpOutcome::DeliveryQueued { id })
    }

    /// See [`WriteOp::TakeDeliveries`](crate::store::model::WriteOp::TakeDeliveries).
    pub(super) fn take_deliveries(
        &mut self,
        target: &str,
        limit: u32,
        lease: &Lease,
    ) -> StoreResult<OpOutcome> {
        let now = self.lease_now()?;
        self.tx.execute(sql::ENSURE_TARGET, &[target.into()])?;
        let Some(row) = self.tx.query_row(sql::TARGET_ROW, &[target.into()])? else {
            return Ok(OpOutcome::Taken(Taken::HeldElsewhere));
        };
        let (owner, until, dead) = (row.opt_text(0), row.opt_int(1), row.opt_text(2));
        if let Some(reason) = dead {
            // Owed ones committed by another node while this target died there: dead too.
            self.kill_owed(target, &format!("target dead: {reason}"))?;
            return Ok(OpOutcome::Taken(Taken::TargetDead));
        }
        let mine = owner.as_deref() == Some(&*lease.owner);
        let expired = !matches!(until, Some(u) if u >= now);
        if !mine && !expired && owner.is_some() {
            return Ok(OpOutcome::Taken(Taken::HeldElsewhere));
        }
        if !mine && owner.is_some() {
            // Taken over: whatever the last holder had in flight is owed again.
            self.tx.execute(sql::RESEND_TARGET, &[target.into()])?;
        }
        self.tx.execute(
            sql::LEASE_TARGET,
            &[
                target.into(),
                (&*lease.owner).into(),
                (now + lease.duration_ms).into(),
            ],
        )?;
        let sending = self
            .tx
            .query_row(sql::SENDING_COUNT, &[target.into()])?
            .map_or(0, |r| r.int(0));
        let room = i64::from(limit) - sending;
        if room <= 0 {
            return Ok(OpOutcome::Taken(Taken::Tickets(Vec::new())));
        }
        let head = self
            .tx
            .query(sql::PENDING_HEAD, &[target.into(), room.into()])?;
        let mut tickets = Vec::new();
        for row in head {
            let (id, due) = (row.int(0), row.int(1));
            if due > self.clock.ms {
                // Order holds: nothing behind a delivery waiting for its backoff goes first.
                if tickets.is_empty() {
                    return Ok(OpOutcome::Taken(Taken::DueAt(due)));
                }
                break;
            }
            self.tx
                .execute(sql::SEND_DELIVERY, &[id.into(), (&*lease.owner).into()])?;
            if let Some(t) = self.tx.query_row(sql::DELIVERY_TICKET, &[id.into()])? {
                tickets.push(ticket(&t));
            }
        }
        Ok(OpOutcome::Taken(Taken::Tickets(tickets)))
    }

    /// See [`WriteOp::DeliveryOutcome`](crate::store::model::WriteOp::DeliveryOutcome).
    pub(super) fn delivery_outcome(
        &mut self,
        id: i64,
        attempt: u32,
        result: &AttemptResult,
        next: &DeliveryNext,
    ) -> StoreResult<OpOutcome> {
        let Some(row) = self.tx.query_row(sql::DELIVERY_ROW, &[id.into()])? else {
            return Ok(OpOutcome::NotApplicable { state: None });
        };
        if row.text(0) != "sending" || row.int(1) != i64::from(attempt) {
            return Ok(OpOutcome::NotApplicable { state: None });
        }
        let target = row.text(2);
        let now = self.clock.ms;
        let status = result.status.map(i64::from);
        self.tx.execute(
            sql::RECORD_DELIVERY_ATTEMPT,
            &[
                id.into(),
                now.into(),
                status.into(),
                result.latency_ms.into(),
                (&result.error).into(),
            ],
        )?;
        let error = &result.error;
        let label = mask_target(&target);
        match next {
            DeliveryNext::Delivered => {
                self.tx
                    .execute(sql::DELIVERED, &[id.into(), now.into(), status.into()])?;
                self.owe(&label, -1);
                self.d.deliveries_delivered += 1;
            }
            DeliveryNext::RetryAt(at) => {
                self.tx.execute(
                    sql::DELIVERY_RETRY,
                    &[id.into(), (*at).into(), status.into(), error.into()],
                )?;
            }
            DeliveryNext::RateLimited(at) => {
                self.tx.execute(
                    sql::DELIVERY_RATE_LIMITED,
                    &[id.into(), (*at).into(), status.into(), error.into()],
                )?;
            }
            DeliveryNext::Dead | DeliveryNext::TargetDead { .. } => {
                self.tx.execute(
                    sql::DELIVERY_DEAD,
                    &[id.into(), now.into(), status.into(), error.into()],
                )?;
                self.owe(&label, -1);
                self.died(&label, error.as_deref().unwrap_or_default(), id);
            }
        }
        if let DeliveryNext::TargetDead { reason } = next {
            self.tx.execute(
                sql::KILL_TARGET,
                &[(&target).into(), reason.into(), now.into()],
            )?;
            self.kill_owed(&target, &format!("target dead: {reason}"))?;
        }
        Ok(OpOutcome::DeliveryRecorded { label })
    }

    /// See [`WriteOp::RetryDeliveries`](crate::store::model::WriteOp::RetryDeliveries).
    pub(super) fn retry_deliveries(
        &mut self,
        id: Option<i64>,
        actor: &str,
    ) -> StoreResult<OpOutcome> {
        let n = match id {
            Some(id) => {
                let Some(row) = self.tx.query_row(sql::DELIVERY_ROW, &[id.into()])? else {
                    return Ok(OpOutcome::DeliveryNotApplicable { state: None });
                };
                let (was, target) = (row.text(0), row.text(2));
                let n = self.tx.execute(sql::RETRY_DEAD_DELIVERY, &[id.into()])?;
                if n == 0 {
                    return Ok(OpOutcome::DeliveryNotApplicable { state: Some(was) });
                }
                self.tx.execute(sql::REVIVE_TARGET, &[(&target).into()])?;
                self.owe(&mask_target(&target), 1);
                n as i64
            }
            None => {
                self.tx.execute(sql::REVIVE_ALL_TARGETS, &[])?;
                let retried = self.tx.query(sql::RETRY_ALL_DEAD_DELIVERIES, &[])?;
                let mut by_label = std::collections::BTreeMap::<String, i64>::new();
                for row in &retried {
                    *by_label.entry(row.text(0)).or_default() += 1;
                }
                for (label, n) in by_label {
                    self.owe(&label, n);
                }
                retried.len() as i64
            }
        };
        self.record_action(None, "retry delivery", actor, n)?;
        self.d.deliveries_dead -= n;
        Ok(OpOutcome::Changed(n as u64))
    }

    pub(super) fn discard_delivery(&mut self, id: i64, actor: &str) -> StoreResult<OpOutcome> {
        let Some(row) = self.tx.query_row(sql::DELIVERY_ROW, &[id.into()])? else {
            return Ok(OpOutcome::DeliveryNotApplicable { state: None });
        };
        let (was, target) = (row.text(0), row.text(2));
        let note = format!("discarded by {actor} at {}", self.clock.text());
        let now = self.clock.ms;
        let n = self.tx.execute(
            sql::DISCARD_DELIVERY,
            &[id.into(), now.into(), (&note).into()],
        )?;
        if n == 0 {
            return Ok(OpOutcome::DeliveryNotApplicable { state: Some(was) });
        }
        self.record_action(None, "discard delivery", actor, 1)?;
        if was == "dead" {
            self.d.deliveries_dead -= 1;
        } else {
            self.owe(&mask_target(&target), -1);
        }
        Ok(OpOutcome::Changed(1))
    }

    pub(super) fn release_deliveries(&mut self, owner: &str) -> StoreResult<OpOutcome> {
        let n = self.tx.execute(sql::RELEASE_SENDING, &[owner.into()])?;
        self.tx.execute(sql::RELEASE_TARGETS, &[owner.into()])?;
        Ok(OpOutcome::Changed(n))
    }
}

/// A ticket from [`sql::DELIVERY_TICKET`]'s row.
fn ticket(r: &crate::store::sql::Row) -> DeliveryTicket {
    DeliveryTicket {
        id: r.int(0),
        message_id: r.opt_int(1),
        target: r.text(2),
        kind: TargetKind::parse(&r.text(3)),
        content_type: r.opt_text(4),
        headers_json: r.opt_text(5).unwrap_or_else(|| "{}".into()),
        body: match r.0.get(6) {
            Some(Cell::Blob(b)) => b.clone(),
            _ => Vec::new(),
        },
        attempt: r.int(7).clamp(0, u32::MAX.into()) as u32,
    }
}
