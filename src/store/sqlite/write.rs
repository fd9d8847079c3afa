//! The write connection. Only the writer thread holds it, so there is never lock contention
//! between writers and `BEGIN IMMEDIATE` never waits on another hookvault thread.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::sql_err;
use crate::store::{
    CounterDelta, Effect, MessageState, NewMessage, OpOutcome, Order, OrderChange, StoreResult,
    StoredOrder, WriteOp, WriteStore,
};
use crate::time::rfc3339;

pub struct SqliteWriter {
    conn: Connection,
    commits_since_checkpoint: u32,
    ops_since_checkpoint: usize,
}

impl SqliteWriter {
    pub(super) fn new(conn: Connection) -> StoreResult<Self> {
        // Bound the WAL file after checkpoints so a burst does not leave a huge file behind.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sql_err)?;
        Ok(SqliteWriter {
            conn,
            commits_since_checkpoint: 0,
            ops_since_checkpoint: 0,
        })
    }
}

/// When to copy the WAL back into the database file. A checkpoint writes each page changed
/// since the last one once, however often it changed, so checkpointing seldom writes far less
/// (SD cards wear by the byte): after a second with no commit, or once enough has piled up
/// that the WAL should not grow further (ops are a cautious stand-in for pages: a batch's ops
/// share pages).
const CHECKPOINT_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
const CHECKPOINT_AFTER_COMMITS: u32 = 1000;
const CHECKPOINT_AFTER_OPS: usize = 8192;

impl WriteStore for SqliteWriter {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let mut delta = CounterDelta::default();
        let folds = fold_claims(ops);
        let mut outcomes = Vec::with_capacity(ops.len());
        for (op, fold) in ops.iter().zip(&folds) {
            let outcome = match fold {
                Fold::ClaimFolded { .. } => Ok(OpOutcome::Claimed),
                Fold::EndsFoldedClaim => apply(&tx, op, now_ms, &mut delta, true),
                Fold::None => apply(&tx, op, now_ms, &mut delta, false),
            };
            outcomes.push(outcome.map_err(sql_err)?);
        }
        // A folded claim shares the fate of the op that ended its attempt.
        for (claim, fold) in folds.iter().enumerate() {
            if let Fold::ClaimFolded { ended_by } = *fold {
                if let OpOutcome::NotApplicable { state } = outcomes[ended_by] {
                    outcomes[claim] = OpOutcome::NotApplicable { state };
                }
            }
        }
        write_counters(&tx, &delta, queue_size_peak).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        self.commits_since_checkpoint += 1;
        self.ops_since_checkpoint += ops.len();
        Ok((outcomes, delta))
    }

    fn recover_in_flight(&mut self) -> StoreResult<u64> {
        let n = self
            .conn
            .execute(
                "UPDATE messages SET state = 'queued' WHERE state = 'processing'",
                [],
            )
            .map_err(sql_err)?;
        Ok(n as u64)
    }

    fn maintain(&mut self, idle_for: std::time::Duration) -> StoreResult<()> {
        if self.commits_since_checkpoint == 0 {
            return Ok(());
        }
        if idle_for >= CHECKPOINT_AFTER_IDLE
            || self.commits_since_checkpoint >= CHECKPOINT_AFTER_COMMITS
            || self.ops_since_checkpoint >= CHECKPOINT_AFTER_OPS
        {
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(sql_err)?;
            self.commits_since_checkpoint = 0;
            self.ops_since_checkpoint = 0;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_err)?;
        self.commits_since_checkpoint = 0;
        self.ops_since_checkpoint = 0;
        Ok(())
    }
}

/// How an op takes part in claim folding (see [`fold_claims`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fold {
    None,
    /// A claim whose attempt ends later in the same batch (at `ended_by`): applied by that op.
    ClaimFolded {
        ended_by: usize,
    },
    /// Ends an attempt whose claim is in the same batch: moves from `queued`, counts the attempt.
    EndsFoldedClaim,
}

fn claim_id(op: &WriteOp) -> Option<i64> {
    match op {
        WriteOp::Claim { id } => Some(*id),
        _ => None,
    }
}

fn op_id(op: &WriteOp) -> Option<i64> {
    match op {
        WriteOp::Complete { id, .. } | WriteOp::Retry { id, .. } | WriteOp::Dead { id, .. } => {
            Some(*id)
        }
        _ => None,
    }
}

/// Under load a worker's claim and the end of its attempt usually land in the same group
/// commit. Inside one transaction "claim, then finish" cannot be told from "finish straight
/// from queued", so the pair is written as one update: half the row and index writes for
/// every message, which is both throughput and SD-card wear. Pairs are matched in order, so
/// claim → retry → claim → complete in one batch folds as two pairs.
fn fold_claims(ops: &[WriteOp]) -> Vec<Fold> {
    let mut folds = vec![Fold::None; ops.len()];
    let mut open: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(id) = claim_id(op) {
            open.insert(id, i);
        } else if let Some(id) = op_id(op) {
            if let Some(claim) = open.remove(&id) {
                folds[claim] = Fold::ClaimFolded { ended_by: i };
                folds[i] = Fold::EndsFoldedClaim;
            }
        }
    }
    folds
}

/// `folded`: this op also carries its attempt's claim (the message is still `queued` on disk).
fn apply(
    tx: &Transaction,
    op: &WriteOp,
    now: i64,
    d: &mut CounterDelta,
    folded: bool,
) -> rusqlite::Result<OpOutcome> {
    // Where an attempt's end moves the message from, and how many attempts it adds.
    let (from, bump) = if folded {
        ("queued", 1)
    } else {
        ("processing", 0)
    };
    let leave_from = |d: &mut CounterDelta| {
        if folded {
            d.queued -= 1;
        } else {
            d.processing -= 1;
        }
    };
    match op {
        WriteOp::Append(m) => append(tx, m, d),
        WriteOp::Claim { id } => {
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'processing', attempts = attempts + 1 \
                     WHERE id = ?1 AND state = 'queued'",
                )?
                .execute([id])?;
            if n == 0 {
                return not_applicable(tx, *id);
            }
            d.queued -= 1;
            d.processing += 1;
            Ok(OpOutcome::Claimed)
        }
        WriteOp::Complete {
            id,
            effect,
            processing_ms,
        } => {
            let path: Option<String> = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'processed', finished_at = ?2, last_error = NULL, \
                     attempts = attempts + ?4 WHERE id = ?1 AND state = ?3 RETURNING path",
                )?
                .query_row(params![id, now, from, bump], |r| r.get(0))
                .optional()?;
            let Some(path) = path else {
                return not_applicable(tx, *id);
            };
            leave_from(d);
            d.processed += 1;
            d.processing_ms += *processing_ms as i64;
            let order = match effect {
                Effect::Nothing => None,
                Effect::Order(order) => Some(insert_order(tx, *id, &path, order, now, d)?),
            };
            if let Some(OrderChange::Duplicate { message_id }) = &order {
                tx.prepare_cached("UPDATE messages SET note = ?2 WHERE id = ?1")?
                    .execute(params![
                        id,
                        format!("duplicate order: already stored from message {message_id}")
                    ])?;
            }
            Ok(OpOutcome::Completed { order })
        }
        WriteOp::Retry {
            id,
            error,
            next_attempt_at_ms,
        } => {
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'queued', last_error = ?2, next_attempt_at = ?3, \
                     attempts = attempts + ?5 WHERE id = ?1 AND state = ?4",
                )?
                .execute(params![id, error, next_attempt_at_ms, from, bump])?;
            if n == 0 {
                return not_applicable(tx, *id);
            }
            leave_from(d);
            d.queued += 1;
            d.retried += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::Dead { id, error } => {
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'dead', last_error = ?2, finished_at = ?3, \
                     attempts = attempts + ?5 WHERE id = ?1 AND state = ?4",
                )?
                .execute(params![id, error, now, from, bump])?;
            if n == 0 {
                return not_applicable(tx, *id);
            }
            leave_from(d);
            d.dead += 1;
            d.dead_now += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::RequeueDead { id, actor } => {
            let n = match id {
                Some(id) => tx
                    .prepare_cached(
                        "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
                         finished_at = NULL WHERE id = ?1 AND state = 'dead'",
                    )?
                    .execute([id])?,
                None => tx
                    .prepare_cached(
                        "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
                         finished_at = NULL WHERE state = 'dead'",
                    )?
                    .execute([])?,
            } as i64;
            if n == 0 {
                if let Some(id) = id {
                    return not_applicable(tx, *id);
                }
            }
            record_action(tx, *id, now, "retry", actor, n)?;
            d.dead_now -= n;
            d.queued += n;
            d.requeued += n;
            Ok(OpOutcome::Changed(n as u64))
        }
        WriteOp::Discard { id, actor } => {
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'discarded', note = ?2 WHERE id = ?1 AND state = 'dead'",
                )?
                .execute(params![id, format!("discarded by {actor} at {}", rfc3339(now))])?;
            if n == 0 {
                return not_applicable(tx, *id);
            }
            record_action(tx, Some(*id), now, "discard", actor, 1)?;
            d.dead_now -= 1;
            d.discarded += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::PurgeProcessed {
            finished_before_ms,
            limit,
        } => {
            let ids: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM messages WHERE state = 'processed' AND finished_at < ?1 \
                     ORDER BY id LIMIT ?2",
                )?
                .query_map(params![finished_before_ms, limit], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut del_msg = tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
            let mut del_body = tx.prepare_cached("DELETE FROM bodies WHERE message_id = ?1")?;
            for id in &ids {
                del_msg.execute([id])?;
                del_body.execute([id])?;
            }
            d.purged += ids.len() as i64;
            Ok(OpOutcome::Changed(ids.len() as u64))
        }
        // One node, no lease columns yet: recovery at start re-queues what a crash left
        // `processing`, and the lease keeper is started only for backends with leases.
        WriteOp::RenewLeases { .. } | WriteOp::RequeueExpired => Ok(OpOutcome::Changed(0)),
        WriteOp::Rederive { id, order } => {
            let row: Option<(String, String)> = tx
                .prepare_cached("SELECT path, state FROM messages WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((path, state)) = row else {
                return Ok(OpOutcome::NotApplicable { state: None });
            };
            let change = upsert_order(tx, *id, &path, order, now, d)?;
            if state == "dead" {
                tx.prepare_cached(
                    "UPDATE messages SET state = 'processed', finished_at = ?2, last_error = NULL, \
                     note = 'order derived by reprocess' WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                d.dead_now -= 1;
                d.processed += 1;
            }
            Ok(OpOutcome::Rederived(change))
        }
    }
}

fn append(tx: &Transaction, m: &NewMessage, d: &mut CounterDelta) -> rusqlite::Result<OpOutcome> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO messages (received_at, path, remote_addr, size, idem_key, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued') \
             ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING",
        )?
        .execute(params![
            m.received_at_ms,
            m.path,
            m.remote_addr,
            m.payload.len() as i64,
            m.idem_key
        ])?;
    if inserted == 0 {
        let id: i64 = tx
            .prepare_cached("SELECT id FROM messages WHERE idem_key = ?1")?
            .query_row([&m.idem_key], |r| r.get(0))?;
        d.duplicates += 1;
        return Ok(OpOutcome::Appended {
            id,
            duplicate: true,
        });
    }
    let id = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO bodies (message_id, headers, payload) VALUES (?1, ?2, ?3)")?
        .execute(params![id, m.headers_json, m.payload])?;
    d.received += 1;
    d.queued += 1;
    Ok(OpOutcome::Appended {
        id,
        duplicate: false,
    })
}

fn not_applicable(tx: &Transaction, id: i64) -> rusqlite::Result<OpOutcome> {
    let state: Option<String> = tx
        .prepare_cached("SELECT state FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(OpOutcome::NotApplicable {
        state: state.as_deref().and_then(MessageState::parse),
    })
}

fn record_action(
    tx: &Transaction,
    id: Option<i64>,
    now: i64,
    action: &str,
    actor: &str,
    n: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO operator_actions (message_id, at, action, actor, affected) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, now, action, actor, n])?;
    Ok(())
}

fn insert_order(
    tx: &Transaction,
    message_id: i64,
    path: &str,
    o: &Order,
    now: i64,
    d: &mut CounterDelta,
) -> rusqlite::Result<OrderChange> {
    let fields = serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into());
    let id: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, currency, \
             email, size, site, quantity, profile, title, fields, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (source_path, order_number) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                message_id, path, o.order_number, o.product, o.amount_cents, o.currency, o.email, o.size,
                o.site, o.quantity, o.profile, o.title, fields, now
            ],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => {
            d.orders_created += 1;
            Ok(OrderChange::Created(Box::new(StoredOrder {
                id,
                message_id,
                source_path: path.to_string(),
                created_at: rfc3339(now),
                updated_at: None,
                order: o.clone(),
            })))
        }
        None => {
            let first: i64 = tx
                .prepare_cached(
                    "SELECT message_id FROM orders WHERE source_path = ?1 AND order_number = ?2",
                )?
                .query_row(params![path, o.order_number], |r| r.get(0))?;
            Ok(OrderChange::Duplicate { message_id: first })
        }
    }
}

/// Re-derivation: the stored order is replaced by what the current parser makes of the same
/// body, but only if that differs, so running `reprocess` twice changes nothing the second time.
fn upsert_order(
    tx: &Transaction,
    message_id: i64,
    path: &str,
    o: &Order,
    now: i64,
    d: &mut CounterDelta,
) -> rusqlite::Result<OrderChange> {
    let existing: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, message_id FROM orders WHERE source_path = ?1 AND order_number = ?2",
        )?
        .query_row(params![path, o.order_number], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((order_id, first_message)) = existing else {
        return insert_order(tx, message_id, path, o, now, d);
    };
    if first_message != message_id {
        return Ok(OrderChange::Duplicate {
            message_id: first_message,
        });
    }
    let fields = serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into());
    let n = tx
        .prepare_cached(
            "UPDATE orders SET product = ?2, amount_cents = ?3, currency = ?4, email = ?5, size = ?6, \
             site = ?7, quantity = ?8, profile = ?9, title = ?10, fields = ?11, updated_at = ?12 \
             WHERE id = ?1 AND NOT (product IS ?2 AND amount_cents IS ?3 AND currency IS ?4 AND \
             email IS ?5 AND size IS ?6 AND site IS ?7 AND quantity IS ?8 AND profile IS ?9 AND \
             title IS ?10 AND fields IS ?11)",
        )?
        .execute(params![
            order_id, o.product, o.amount_cents, o.currency, o.email, o.size, o.site, o.quantity,
            o.profile, o.title, fields, now
        ])?;
    Ok(if n == 0 {
        OrderChange::Unchanged
    } else {
        OrderChange::Changed
    })
}

/// Durable totals move in the same transaction as the rows they count. Gauges (queued,
/// processing, dead now) are not stored: they are counted once at start-up.
fn write_counters(tx: &Transaction, d: &CounterDelta, peak: u64) -> rusqlite::Result<()> {
    let mut add = tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )?;
    for (name, value) in d.totals() {
        if value != 0 {
            add.execute(params![name, value])?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES ('queue_size_peak', ?1) \
         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([peak as i64])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{sqlite, MessageState, ReadStore};

    fn message() -> WriteOp {
        WriteOp::Append(NewMessage {
            received_at_ms: 1,
            path: "/p".into(),
            remote_addr: None,
            headers_json: "{}".into(),
            payload: b"{}".to_vec(),
            idem_key: None,
        })
    }

    fn state(reader: &dyn ReadStore, id: i64) -> (MessageState, u32) {
        let m = reader.message(id).unwrap().unwrap();
        (m.summary.status, m.summary.attempts)
    }

    #[test]
    fn claims_fold_into_the_op_that_ends_their_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message(), message()], 1, 0)
            .unwrap();
        let done = |id| WriteOp::Complete {
            id,
            effect: Effect::Nothing,
            processing_ms: 1,
        };
        let retry = |id| WriteOp::Retry {
            id,
            error: "later".into(),
            next_attempt_at_ms: 0,
        };

        // 1: claim + complete in one batch. 2: claim, retry, claim, dead in one batch.
        // 3: claim alone, completed in the next batch (not folded).
        let ops = [
            WriteOp::Claim { id: 1 },
            WriteOp::Claim { id: 2 },
            WriteOp::Claim { id: 3 },
            done(1),
            retry(2),
            WriteOp::Claim { id: 2 },
            WriteOp::Dead {
                id: 2,
                error: "bad".into(),
            },
        ];
        let (outcomes, delta) = w.commit_batch(&ops, 2, 0).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Claimed);
        assert_eq!(outcomes[3], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 1), (MessageState::Processed, 1));
        assert_eq!(state(&r, 2), (MessageState::Dead, 2));
        assert_eq!(state(&r, 3), (MessageState::Processing, 1));
        assert_eq!(
            (
                delta.queued,
                delta.processing,
                delta.processed,
                delta.dead,
                delta.retried
            ),
            (-3, 1, 1, 1, 1)
        );

        let (outcomes, _) = w.commit_batch(&[done(3)], 3, 0).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 3), (MessageState::Processed, 1));

        // A folded pair on a message that is not queued leaves it alone, and says so for both.
        let (outcomes, delta) = w
            .commit_batch(&[WriteOp::Claim { id: 1 }, done(1)], 4, 0)
            .unwrap();
        let na = OpOutcome::NotApplicable {
            state: Some(MessageState::Processed),
        };
        assert_eq!(outcomes, vec![na.clone(), na]);
        assert_eq!(delta, CounterDelta::default());
        let c = r.counters().unwrap();
        assert_eq!((c.received, c.processed, c.dead, c.retried), (3, 2, 1, 1));
    }
}
