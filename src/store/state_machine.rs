//! What every [`WriteOp`] means, with all its counter bookkeeping, written once for every
//! backend: which rows it changes, when it does not apply (`NotApplicable`), and how it moves
//! the [`CounterDelta`]. It speaks to the database only through [`SqlTx`]; where the backends
//! differ (the outcome's guard, row locks, how a sweep is kept to one node) it reads their
//! [`Rules`](super::sql::Rules).
//!
//! A new op is a variant in `model.rs`, one arm in [`Batch::apply`] and a method beside the
//! others; a new table is its statements in `statements.rs`. No backend changes.

use std::collections::HashMap;

use super::sql::{counter_rows, Announce, SqlTx, Value};
use super::statements as sql;
use crate::base::time::rfc3339;
use crate::store::error::StoreResult;
use crate::store::model::{
    CounterDelta, Effect, Lease, MessageState, NewMessage, NewRejection, OpOutcome, OrderChange,
    StoredOrder, WriteOp,
};
use crate::store::order::Order;

/// Applies `ops` in `tx` (one batch, one transaction) and adds what they moved to the durable
/// counters in the same transaction; the outcomes line up with `ops`.
pub fn apply_batch(
    tx: &mut dyn SqlTx,
    ops: &[WriteOp],
    now_ms: i64,
) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
    let folded = if tx.rules().writers.outcome_on_queued() {
        fold_claims(ops)
    } else {
        vec![None; ops.len()]
    };
    let mut batch = Batch::new(tx, now_ms);
    let mut outcomes = Vec::with_capacity(ops.len());
    let carries_claim = carried_claims(&folded);
    for ((op, folded), carries) in ops.iter().zip(&folded).zip(carries_claim) {
        outcomes.push(match folded {
            Some(_) => OpOutcome::Claimed,
            None => batch.apply(op, carries)?,
        });
    }
    // A folded claim shares the fate of the outcome that carried it.
    for (claim, folded) in folded.iter().enumerate() {
        if let Some(ended_by) = *folded {
            if let OpOutcome::NotApplicable { state } = outcomes[ended_by] {
                outcomes[claim] = OpOutcome::NotApplicable { state };
            }
        }
    }
    let delta = batch.finish()?;
    Ok((outcomes, delta))
}

/// At start: back to `queued` every `processing` message leased to `owner` (this node, which
/// stopped holding them), to nobody, or whose lease ran out; another node's live leases stay.
pub fn recover_in_flight(tx: &mut dyn SqlTx, owner: &str, now_ms: i64) -> StoreResult<u64> {
    let now = tx.lease_clock(now_ms)?;
    let ids = tx.query(sql::RECOVERABLE, &[owner.into(), now.into()])?;
    for row in &ids {
        tx.execute(sql::REQUEUE_EXPIRED, &[row.int(0).into()])?;
    }
    let n = ids.len() as i64;
    let mut batch = Batch::new(tx, now_ms);
    batch.d.processing -= n;
    batch.d.queued += n;
    batch.finish()?;
    Ok(n as u64)
}

/// One batch's transaction, its clock and what it moved.
struct Batch<'t> {
    tx: &'t mut dyn SqlTx,
    clock: BatchClock,
    /// The lease clock, read once per batch when a lease needs it.
    lease_now: Option<i64>,
    /// The lease holder an outcome's guard demands (this node), `None` where any will do.
    holder: Option<String>,
    d: CounterDelta,
    /// Per-source totals moved by the batch: (source, counter) → amount.
    by_source: HashMap<(String, &'static str), i64>,
}

/// Where an attempt's outcome finds its message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttemptRow {
    /// `processing` with this attempt's number: the claim landed (the usual case).
    Processing,
    /// `queued` one attempt before: the claim has not landed (folded in the same batch, or
    /// held back by a failed commit). The outcome carries the claim; a claim arriving later
    /// finds the attempt number taken and does nothing.
    QueuedBefore,
    /// `queued` with this attempt's number: the lease ran out and the message was put back
    /// just before the outcome landed. The attempt did finish, so its outcome counts.
    QueuedAfter,
}

impl<'t> Batch<'t> {
    fn new(tx: &'t mut dyn SqlTx, now_ms: i64) -> Self {
        let holder = tx
            .rules()
            .writers
            .outcome_needs_lease_holder()
            .then(|| tx.node().to_owned());
        Batch {
            tx,
            clock: BatchClock::new(now_ms),
            lease_now: None,
            holder,
            d: CounterDelta::default(),
            by_source: HashMap::new(),
        }
    }

    /// The one place an op's meaning is chosen. `carries_claim`: the op is an attempt's
    /// outcome whose claim folded into it (see [`fold_claims`]).
    fn apply(&mut self, op: &WriteOp, carries_claim: bool) -> StoreResult<OpOutcome> {
        match op {
            WriteOp::Append(m) => self.append(m),
            WriteOp::Claim { id, attempt, lease } => self.claim(*id, *attempt, lease),
            WriteOp::Complete {
                id,
                attempt,
                path,
                effect,
                processing_us,
            } => self.complete(*id, *attempt, path, effect, *processing_us, carries_claim),
            WriteOp::Retry {
                id,
                attempt,
                error,
                next_attempt_at_ms,
            } => self.retry(*id, *attempt, error, *next_attempt_at_ms, carries_claim),
            WriteOp::Dead { id, attempt, error } => self.dead(*id, *attempt, error, carries_claim),
            WriteOp::RenewLeases { lease, live } => self.renew_leases(lease, live),
            WriteOp::RequeueDead { id, actor } => self.requeue_dead(*id, actor),
            WriteOp::Discard { id, actor } => self.discard(*id, actor),
            WriteOp::PurgeProcessed {
                finished_before_ms,
                limit,
            } => self.purge(*finished_before_ms, *limit),
            WriteOp::PurgeDeliveries {
                finished_before_ms,
                limit,
            } => self.purge_deliveries(*finished_before_ms, *limit),
            WriteOp::Rederive { id, order } => self.rederive(*id, order),
            WriteOp::Deliver(d) => self.deliver(d),
            WriteOp::TakeDeliveries {
                target,
                limit,
                lease,
            } => self.take_deliveries(target, *limit, lease),
            WriteOp::DeliveryOutcome {
                id,
                attempt,
                result,
                next,
            } => self.delivery_outcome(*id, *attempt, result, next),
            WriteOp::RetryDeliveries { id, actor } => self.retry_deliveries(*id, actor),
            WriteOp::DiscardDelivery { id, actor } => self.discard_delivery(*id, actor),
            WriteOp::ReleaseDeliveries { owner } => self.release_deliveries(owner),
            WriteOp::Reject(r) => self.reject(r),
            WriteOp::QueueSizePeak { peak } => {
                self.tx
                    .raise_counter("queue_size_peak", i64::try_from(*peak).unwrap_or(i64::MAX))?;
                Ok(OpOutcome::Changed(0))
            }
        }
    }

    /// Adds what the batch moved to the durable counters; the delta, for the live figures.
    fn finish(self) -> StoreResult<CounterDelta> {
        let rows = counter_rows(&self.d, self.tx.rules().writers.stores_gauges());
        if !rows.is_empty() {
            self.tx.add_counters(&rows)?;
        }
        let node = self.tx.node().to_string();
        for ((source, name), n) in &self.by_source {
            self.tx.execute(
                sql::ADD_SOURCE_COUNTER,
                &[(&node).into(), source.into(), (*name).into(), (*n).into()],
            )?;
        }
        Ok(self.d)
    }

    /// One more for `source`'s total `name`, written with the batch's other counters.
    fn count(&mut self, source: &str, name: &'static str) {
        *self
            .by_source
            .entry((source.to_string(), name))
            .or_insert(0) += 1;
    }

    fn lease_now(&mut self) -> StoreResult<i64> {
        if let Some(now) = self.lease_now {
            return Ok(now);
        }
        let now = self.tx.lease_clock(self.clock.ms)?;
        self.lease_now = Some(now);
        Ok(now)
    }

    fn append(&mut self, m: &NewMessage) -> StoreResult<OpOutcome> {
        let inserted = self.tx.insert(
            sql::APPEND_MESSAGE,
            &[
                m.received_at_ms.into(),
                (&m.path).into(),
                (&m.remote_addr).into(),
                (m.payload.len() as i64).into(),
                (&m.idem_key).into(),
                (&m.source).into(),
            ],
        )?;
        let Some(id) = inserted else {
            let id = self
                .tx
                .query_row(
                    sql::MESSAGE_BY_IDEM_KEY,
                    &[(&m.source).into(), (&m.idem_key).into()],
                )?
                .map_or(0, |r| r.int(0));
            self.d.duplicates += 1;
            return Ok(OpOutcome::Appended {
                id,
                duplicate: true,
            });
        };
        self.tx.execute(
            sql::APPEND_BODY,
            &[id.into(), (&m.headers_json).into(), m.payload[..].into()],
        )?;
        for d in &m.deliveries {
            self.insert_delivery(Some(id), d)?;
        }
        self.d.received += 1;
        self.count(&m.source, "received");
        self.d.queued += 1;
        self.tx.announce(Announce::Received, id);
        Ok(OpOutcome::Appended {
            id,
            duplicate: false,
        })
    }

    fn claim(&mut self, id: i64, attempt: u32, lease: &Lease) -> StoreResult<OpOutcome> {
        let until = self.lease_now()? + lease.duration_ms;
        let claim = self.tx.rules().claim;
        let n = self.tx.execute(
            claim,
            &[
                id.into(),
                attempt.into(),
                (&*lease.owner).into(),
                until.into(),
            ],
        )?;
        if n == 0 {
            return self.not_applicable(id);
        }
        self.d.queued -= 1;
        self.d.processing += 1;
        Ok(OpOutcome::Claimed)
    }

    fn complete(
        &mut self,
        id: i64,
        attempt: u32,
        path: &str,
        effect: &Effect,
        processing_us: u64,
        carries_claim: bool,
    ) -> StoreResult<OpOutcome> {
        let now = self.clock.ms;
        let holder = Value::from(self.holder.as_deref());
        let params = [id.into(), now.into(), attempt.into(), holder];
        let Some((from, source)) = land(
            &mut *self.tx,
            id,
            attempt,
            &sql::COMPLETE,
            &params,
            carries_claim,
        )?
        else {
            return self.not_applicable(id);
        };
        self.leave(from);
        self.d.processed += 1;
        self.d.processing_us += processing_us as i64;
        self.count(&source, "processed");
        let order = match effect {
            Effect::Nothing => None,
            Effect::Order(order) => Some(self.insert_order(id, path, &source, order)?),
        };
        if let Some(OrderChange::Duplicate { message_id }) = &order {
            let note = format!("duplicate order: already stored from message {message_id}");
            self.tx
                .execute(sql::SET_NOTE, &[id.into(), (&note).into()])?;
        }
        Ok(OpOutcome::Completed { order })
    }

    fn retry(
        &mut self,
        id: i64,
        attempt: u32,
        error: &str,
        next_attempt_at_ms: i64,
        carries_claim: bool,
    ) -> StoreResult<OpOutcome> {
        let holder = Value::from(self.holder.as_deref());
        let params = [
            id.into(),
            error.into(),
            next_attempt_at_ms.into(),
            attempt.into(),
            holder,
        ];
        let Some((from, source)) = land(
            &mut *self.tx,
            id,
            attempt,
            &sql::RETRY,
            &params,
            carries_claim,
        )?
        else {
            return self.not_applicable(id);
        };
        self.leave(from);
        self.d.queued += 1;
        self.d.retried += 1;
        self.count(&source, "failed");
        Ok(OpOutcome::Changed(1))
    }

    fn dead(
        &mut self,
        id: i64,
        attempt: u32,
        error: &str,
        carries_claim: bool,
    ) -> StoreResult<OpOutcome> {
        let now = self.clock.ms;
        let holder = Value::from(self.holder.as_deref());
        let params = [id.into(), error.into(), now.into(), attempt.into(), holder];
        let Some((from, source)) = land(
            &mut *self.tx,
            id,
            attempt,
            &sql::DEAD,
            &params,
            carries_claim,
        )?
        else {
            return self.not_applicable(id);
        };
        self.leave(from);
        self.d.dead += 1;
        self.count(&source, "failed");
        self.count(&source, "dead");
        self.d.dead_now += 1;
        self.tx.announce(Announce::Dead, id);
        Ok(OpOutcome::Changed(1))
    }

    /// The lease keeper's tick (see [`WriteOp::RenewLeases`]): extends this node's leases on
    /// the attempts it holds, and puts back to `queued` every other `processing` message whose
    /// lease ran out. It walks the `processing` rows only (as many as attempts in hand).
    fn renew_leases(&mut self, lease: &Lease, live: &[i64]) -> StoreResult<OpOutcome> {
        let now = self.lease_now()?;
        let rows = self.tx.query(sql::PROCESSING_ROWS, &[])?;
        let (mut extended, mut requeued) = (0, Vec::new());
        for row in rows {
            let (id, owner, until) = (row.int(0), row.opt_text(1), row.opt_int(2));
            let held_here = owner.as_deref() == Some(&*lease.owner);
            if held_here && live.binary_search(&id).is_ok() {
                self.tx.execute(
                    sql::EXTEND_LEASE,
                    &[id.into(), (now + lease.duration_ms).into()],
                )?;
                extended += 1;
            } else if !matches!(until, Some(u) if u >= now) {
                self.tx.execute(sql::REQUEUE_EXPIRED, &[id.into()])?;
                requeued.push(id);
            }
        }
        let n = requeued.len() as i64;
        self.d.processing -= n;
        self.d.queued += n;
        self.d.leases_expired += n;
        Ok(OpOutcome::LeasesRenewed { extended, requeued })
    }

    fn requeue_dead(&mut self, id: Option<i64>, actor: &str) -> StoreResult<OpOutcome> {
        let n = match id {
            Some(id) => self.tx.execute(sql::REQUEUE_DEAD, &[id.into()])?,
            None => self.tx.execute(sql::REQUEUE_ALL_DEAD, &[])?,
        } as i64;
        if n == 0 {
            if let Some(id) = id {
                return self.not_applicable(id);
            }
        }
        self.record_action(id, "retry", actor, n)?;
        self.d.dead_now -= n;
        self.d.queued += n;
        self.d.requeued += n;
        Ok(OpOutcome::Changed(n as u64))
    }

    fn discard(&mut self, id: i64, actor: &str) -> StoreResult<OpOutcome> {
        let note = format!("discarded by {actor} at {}", self.clock.text());
        let n = self
            .tx
            .execute(sql::DISCARD, &[id.into(), (&note).into()])?;
        if n == 0 {
            return self.not_applicable(id);
        }
        self.record_action(Some(id), "discard", actor, 1)?;
        self.d.dead_now -= 1;
        self.d.discarded += 1;
        Ok(OpOutcome::Changed(1))
    }

    /// Whether this transaction may sweep: only one node sweeps at a time.
    fn sweep_allowed(&mut self) -> StoreResult<bool> {
        match self.tx.rules().sweep_lock {
            Some(lock) => Ok(self.tx.query_row(lock, &[])?.map(|r| r.int(0)) == Some(1)),
            None => Ok(true),
        }
    }

    fn purge(&mut self, finished_before_ms: i64, limit: u32) -> StoreResult<OpOutcome> {
        if !self.sweep_allowed()? {
            // Another node is sweeping; this one does nothing this time.
            return Ok(OpOutcome::Purged {
                messages: 0,
                deliveries: 0,
            });
        }
        let candidates = self.tx.rules().purge_candidates;
        let ids = self
            .tx
            .query(candidates, &[finished_before_ms.into(), limit.into()])?;
        let mut deliveries = 0;
        for row in &ids {
            let id = row.int(0);
            self.tx.execute(sql::DELETE_MESSAGE, &[id.into()])?;
            self.tx.execute(sql::DELETE_BODY, &[id.into()])?;
            self.tx
                .execute(sql::DELETE_MESSAGE_DELIVERY_ATTEMPTS, &[id.into()])?;
            deliveries += self
                .tx
                .execute(sql::DELETE_MESSAGE_DELIVERIES, &[id.into()])?;
        }
        self.d.purged += ids.len() as i64;
        Ok(OpOutcome::Purged {
            messages: ids.len() as u64,
            deliveries,
        })
    }

    /// Deliveries of their own (alerts) finished before the cut-off; a message's go with it.
    fn purge_deliveries(&mut self, finished_before_ms: i64, limit: u32) -> StoreResult<OpOutcome> {
        if !self.sweep_allowed()? {
            return Ok(OpOutcome::Purged {
                messages: 0,
                deliveries: 0,
            });
        }
        let candidates = self.tx.rules().own_delivery_candidates;
        let ids = self
            .tx
            .query(candidates, &[finished_before_ms.into(), limit.into()])?;
        for row in &ids {
            let id = row.int(0);
            self.tx
                .execute(sql::DELETE_DELIVERY_ATTEMPTS, &[id.into()])?;
            self.tx.execute(sql::DELETE_DELIVERY, &[id.into()])?;
        }
        Ok(OpOutcome::Purged {
            messages: 0,
            deliveries: ids.len() as u64,
        })
    }

    /// A refused webhook in the rejections log, the log trimmed to `keep` rows in the same
    /// transaction, and the source's `rejected` total.
    fn reject(&mut self, r: &NewRejection) -> StoreResult<OpOutcome> {
        self.tx.execute(
            sql::INSERT_REJECTION,
            &[
                r.at_ms.into(),
                (&r.source).into(),
                (&r.remote_addr).into(),
                r.reason.into(),
                i64::try_from(r.size).unwrap_or(i64::MAX).into(),
            ],
        )?;
        let keep = i64::try_from(r.keep.max(1)).unwrap_or(i64::MAX);
        self.tx.execute(sql::TRIM_REJECTIONS, &[keep.into()])?;
        self.count(&r.source, "rejected");
        Ok(OpOutcome::Changed(1))
    }

    fn rederive(&mut self, id: i64, order: &Order) -> StoreResult<OpOutcome> {
        let Some(row) = self
            .tx
            .query_row(sql::MESSAGE_PATH_AND_STATE, &[id.into()])?
        else {
            return Ok(OpOutcome::NotApplicable { state: None });
        };
        let (path, state, source) = (row.text(0), row.text(1), row.text(2));
        let change = self.upsert_order(id, &path, &source, order)?;
        if state == MessageState::Dead.as_str() {
            let now = self.clock.ms;
            self.tx
                .execute(sql::REDERIVED_PROCESSED, &[id.into(), now.into()])?;
            self.d.dead_now -= 1;
            self.d.processed += 1;
        }
        Ok(OpOutcome::Rederived(change))
    }

    /// The gauge an outcome's message leaves.
    fn leave(&mut self, from: AttemptRow) {
        match from {
            AttemptRow::Processing => self.d.processing -= 1,
            AttemptRow::QueuedBefore | AttemptRow::QueuedAfter => self.d.queued -= 1,
        }
    }

    fn not_applicable(&mut self, id: i64) -> StoreResult<OpOutcome> {
        let state = self
            .tx
            .query_row(sql::MESSAGE_STATE, &[id.into()])?
            .map(|r| r.text(0));
        Ok(OpOutcome::NotApplicable {
            state: state.as_deref().and_then(MessageState::parse),
        })
    }

    fn record_action(
        &mut self,
        id: Option<i64>,
        action: &str,
        actor: &str,
        n: i64,
    ) -> StoreResult<()> {
        let now = self.clock.ms;
        self.tx.execute(
            sql::RECORD_ACTION,
            &[id.into(), now.into(), action.into(), actor.into(), n.into()],
        )?;
        Ok(())
    }

    fn insert_order(
        &mut self,
        message_id: i64,
        path: &str,
        source: &str,
        o: &Order,
    ) -> StoreResult<OrderChange> {
        let fields = order_fields(o);
        let now = self.clock.ms;
        let keys = [message_id.into(), path.into(), (&o.order_number).into()];
        let mut params = order_params(&keys, o, &fields, now);
        params.push(source.into());
        let inserted = self.tx.insert(sql::INSERT_ORDER, &params)?;
        let Some(id) = inserted else {
            let first = self
                .tx
                .query_row(sql::ORDER_BY_KEY, &[path.into(), (&o.order_number).into()])?
                .map_or(0, |r| r.int(1));
            return Ok(OrderChange::Duplicate { message_id: first });
        };
        self.d.orders_created += 1;
        self.tx.announce(Announce::OrderCreated, id);
        Ok(OrderChange::Created(Box::new(StoredOrder {
            id,
            message_id,
            source: source.to_string(),
            source_path: path.to_string(),
            created_at: self.clock.text().to_owned(),
            updated_at: None,
            order: o.clone(),
        })))
    }

    /// Re-derivation: the stored order is replaced by what the current parser makes of the
    /// same body, but only if that differs, so running `reprocess` twice changes nothing the
    /// second time.
    fn upsert_order(
        &mut self,
        message_id: i64,
        path: &str,
        source: &str,
        o: &Order,
    ) -> StoreResult<OrderChange> {
        let existing = self
            .tx
            .query_row(sql::ORDER_BY_KEY, &[path.into(), (&o.order_number).into()])?;
        let Some(existing) = existing else {
            return self.insert_order(message_id, path, source, o);
        };
        let (order_id, first_message) = (existing.int(0), existing.int(1));
        if first_message != message_id {
            return Ok(OrderChange::Duplicate {
                message_id: first_message,
            });
        }
        let fields = order_fields(o);
        let n = self.tx.execute(
            sql::UPDATE_ORDER_IF_CHANGED,
            &order_params(&[order_id.into()], o, &fields, self.clock.ms),
        )?;
        Ok(if n == 0 {
            OrderChange::Unchanged
        } else {
            OrderChange::Changed
        })
    }
}

fn order_fields(o: &Order) -> String {
    serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into())
}

/// The parameters of an order's row in the one order both order statements number them:
/// `first` (the keys), the columns from `product` to `fields`, then the time (`created_at` or
/// `updated_at`).
fn order_params<'a>(
    first: &[Value<'a>],
    o: &'a Order,
    fields: &'a str,
    now: i64,
) -> Vec<Value<'a>> {
    let mut params = first.to_vec();
    params.extend_from_slice(&[
        (&o.product).into(),
        o.amount_cents.into(),
        (&o.currency).into(),
        (&o.email).into(),
        (&o.size).into(),
        (&o.site).into(),
        o.quantity.into(),
        (&o.profile).into(),
        (&o.title).into(),
        fields.into(),
        now.into(),
    ]);
    params
}

fn claim_key(op: &WriteOp) -> Option<(i64, u32)> {
    match op {
        WriteOp::Claim { id, attempt, .. } => Some((*id, *attempt)),
        _ => None,
    }
}

fn outcome_key(op: &WriteOp) -> Option<(i64, u32)> {
    match op {
        WriteOp::Complete { id, attempt, .. }
        | WriteOp::Retry { id, attempt, .. }
        | WriteOp::Dead { id, attempt, .. } => Some((*id, *attempt)),
        _ => None,
    }
}

/// Lands attempt `attempt`'s outcome on message `id` with `statements` (`params`: the
/// statement's own, then the lease holder): where it found the message, or `None` when
/// the message is not in a state that attempt can end (the backend's guard; nothing
/// changed). The usual places are tried first by a guarded update alone (a claim folded
/// into this outcome: `queued` just before it; otherwise `processing` that attempt); only
/// when that changes nothing is the row read to tell the rest apart.
fn land(
    tx: &mut dyn SqlTx,
    id: i64,
    attempt: u32,
    statements: &sql::OutcomeStatements,
    params: &[Value],
    carries_claim: bool,
) -> StoreResult<Option<(AttemptRow, String)>> {
    // Each statement returns the message's source (for its per-source totals), so landing
    // still needs no read first.
    let own = &params[..params.len() - 1];
    let landed = if carries_claim {
        tx.query_row(statements.if_queued_before, own)?
    } else {
        tx.query_row(statements.if_processing, params)?
    };
    if let Some(row) = landed {
        let from = if carries_claim {
            AttemptRow::QueuedBefore
        } else {
            AttemptRow::Processing
        };
        return Ok(Some((from, row.text(0))));
    }
    let Some(found) = attempt_row(tx, id, attempt)? else {
        return Ok(None);
    };
    let source = tx.query_row(statements.by_id, own)?.map(|r| r.text(0));
    Ok(Some((found, source.unwrap_or_default())))
}

/// Where message `id` is for the outcome of attempt `attempt`, or `None` when it is not
/// in a state that attempt can end.
fn attempt_row(tx: &mut dyn SqlTx, id: i64, attempt: u32) -> StoreResult<Option<AttemptRow>> {
    let writers = tx.rules().writers;
    let Some(row) = tx.query_row(sql::ATTEMPT_ROW, &[id.into()])? else {
        return Ok(None);
    };
    let (state, attempts) = (row.text(0), row.int(1));
    if writers.outcome_needs_lease_holder() && row.opt_text(3).as_deref() != Some(tx.node()) {
        return Ok(None);
    }
    let attempt = i64::from(attempt);
    Ok(match state.as_str() {
        "processing" if attempts == attempt => Some(AttemptRow::Processing),
        "queued" if writers.outcome_on_queued() && attempts + 1 == attempt => {
            Some(AttemptRow::QueuedBefore)
        }
        "queued" if writers.outcome_on_queued() && attempts == attempt => {
            Some(AttemptRow::QueuedAfter)
        }
        _ => None,
    })
}

/// Under load a worker's claim and the end of its attempt usually land in the same group
/// commit. Inside one transaction "claim, then finish" cannot be told from "finish straight
/// from queued", so where the guard lets an outcome land on a `queued` message the claim is
/// skipped and its outcome writes the pair as one update: half the row and index writes for
/// every message. Returns, for each folded claim, the position of the outcome that carries it.
fn fold_claims(ops: &[WriteOp]) -> Vec<Option<usize>> {
    let mut folded = vec![None; ops.len()];
    let mut open: HashMap<(i64, u32), usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(key) = claim_key(op) {
            open.insert(key, i);
        } else if let Some(key) = outcome_key(op) {
            if let Some(claim) = open.remove(&key) {
                folded[claim] = Some(i);
            }
        }
    }
    folded
}

/// For each op, whether a claim folded into it (it is the outcome that carries it).
fn carried_claims(folded: &[Option<usize>]) -> Vec<bool> {
    let mut carries = vec![false; folded.len()];
    for outcome in folded.iter().flatten() {
        carries[*outcome] = true;
    }
    carries
}

/// A batch's commit time: every op of a batch is stamped with the same instant, so its text
/// (an order's `created_at`) is formatted once per batch, not once per order.
struct BatchClock {
    ms: i64,
    text: std::cell::OnceCell<String>,
}

impl BatchClock {
    fn new(ms: i64) -> Self {
        BatchClock {
            ms,
            text: std::cell::OnceCell::new(),
        }
    }

    fn text(&self) -> &str {
        self.text.get_or_init(|| rfc3339(self.ms))
    }
}

mod deliveries;
#[cfg(test)]
mod delivery_tests;
#[cfg(test)]
mod tests;
