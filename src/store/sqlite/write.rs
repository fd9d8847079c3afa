//! The write connection. Only the writer thread holds it, so there is never lock contention
//! between writers and `BEGIN IMMEDIATE` never waits on another hookvault thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::checkpointer::Checkpointer;
use super::sql_err;
use crate::store::{
    CounterDelta, Effect, Lease, MessageState, NewMessage, OpOutcome, Order, OrderChange,
    StoreResult, StoredOrder, WriteOp, WriteStore,
};
use crate::time::rfc3339;

pub struct SqliteWriter {
    conn: Connection,
    /// Held as long as this writer lives (see `store::instance_lock`).
    pub(super) instance_lock: Option<crate::store::InstanceLock>,
    /// Commits that changed rows since the last checkpoint; a commit that changed nothing
    /// (an idle lease tick) wrote no page and needs no checkpoint.
    commits_since_checkpoint: u32,
    ops_since_checkpoint: usize,
    /// The highest `queue_size_peak` written, so a commit whose peak did not rise writes no
    /// counter row for it: an idle lease tick then touches no page at all.
    peak_written: u64,
    /// Runs the PASSIVE checkpoints beside the commits; started at the first one due (a
    /// command that never commits has no such thread), stopped before the final one.
    checkpointer: Option<Checkpointer>,
}

impl SqliteWriter {
    pub(super) fn new(conn: Connection) -> StoreResult<Self> {
        // Bound the WAL file after checkpoints so a burst does not leave a huge file behind.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sql_err)?;
        Ok(SqliteWriter {
            conn,
            instance_lock: None,
            commits_since_checkpoint: 0,
            ops_since_checkpoint: 0,
            peak_written: 0,
            checkpointer: None,
        })
    }
}

impl SqliteWriter {
    /// The write connection itself, for `check --repair`, which writes outside the writer's ops.
    pub(super) fn into_connection(mut self) -> Connection {
        self.checkpointer = None;
        self.conn
    }

    /// Copies the WAL back on the writer's own connection, between commits: nothing is
    /// appended meanwhile, so it copies everything and the next commit starts the WAL over.
    /// `false` when another checkpoint (the checkpointer's) was running and this one did not.
    fn checkpoint_here(&mut self) -> StoreResult<bool> {
        let busy = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
            .map_err(sql_err)?;
        Ok(busy == 0)
    }
}

/// When to copy the WAL back into the database file. A checkpoint writes each page changed
/// since the last one once, however often it changed, so checkpointing seldom writes far less
/// (SD cards wear by the byte): after a second with no commit, or once enough has piled up
/// that the WAL should not grow further (ops are a cautious stand-in for pages: a batch's ops
/// share pages). The checkpoint runs on its own thread and connection ([`Checkpointer`]),
/// beside the commits, so acks that arrive meanwhile do not wait for it.
const CHECKPOINT_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
const CHECKPOINT_AFTER_COMMITS: u32 = 1000;
const CHECKPOINT_AFTER_OPS: usize = 8192;

/// A checkpoint beside the writer never finds the WAL fully copied when a commit starts, so
/// under sustained traffic the WAL would only grow (see [`Checkpointer::wal_frames`]). Past
/// this many frames (16 MiB at 1 KiB pages) the writer runs the due checkpoint itself, which
/// has only what the checkpointer has not yet copied left to do.
const WAL_FRAMES_CHECKPOINT_HERE: u64 = 16 * 1024;
/// How soon the writer tries its own checkpoint again when the checkpointer's was running.
const CHECKPOINT_BUSY_RETRY: Duration = Duration::from_millis(100);

impl WriteStore for SqliteWriter {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        let changes_before = self.conn.total_changes();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let mut delta = CounterDelta::default();
        let clock = BatchClock::new(now_ms);
        let folded = fold_claims(ops);
        let mut outcomes = Vec::with_capacity(ops.len());
        for (op, folded) in ops.iter().zip(&folded) {
            let outcome = match folded {
                Some(_) => Ok(OpOutcome::Claimed),
                None => apply(&tx, op, &clock, &mut delta),
            };
            outcomes.push(outcome.map_err(sql_err)?);
        }
        // A folded claim shares the fate of the outcome that carried it.
        for (claim, folded) in folded.iter().enumerate() {
            if let Some(ended_by) = *folded {
                if let OpOutcome::NotApplicable { state } = outcomes[ended_by] {
                    outcomes[claim] = OpOutcome::NotApplicable { state };
                }
            }
        }
        let peak = (queue_size_peak > self.peak_written).then_some(queue_size_peak);
        write_counters(&tx, &delta, peak).map_err(sql_err)?;
        let changed = tx.total_changes() != changes_before;
        tx.commit().map_err(sql_err)?;
        if let Some(peak) = peak {
            self.peak_written = peak;
        }
        if changed {
            self.commits_since_checkpoint += 1;
            self.ops_since_checkpoint += ops.len();
        }
        Ok((outcomes, delta))
    }

    fn recover_in_flight(&mut self, owner: &str, now_ms: i64) -> StoreResult<u64> {
        let n = self
            .conn
            .execute(
                "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL \
                 WHERE state = 'processing' AND (lease_owner IS NULL OR lease_owner = ?1 \
                 OR lease_until IS NULL OR lease_until < ?2)",
                params![owner, now_ms],
            )
            .map_err(sql_err)?;
        Ok(n as u64)
    }

    /// Checkpoints when due; then nothing is due until the next commit (`None`), or, with
    /// commits not yet copied back, when the writer will have been idle for
    /// [`CHECKPOINT_AFTER_IDLE`].
    fn maintain(
        &mut self,
        idle_for: std::time::Duration,
    ) -> StoreResult<Option<std::time::Duration>> {
        if self.commits_since_checkpoint == 0 {
            return Ok(None);
        }
        if idle_for >= CHECKPOINT_AFTER_IDLE
            || self.commits_since_checkpoint >= CHECKPOINT_AFTER_COMMITS
            || self.ops_since_checkpoint >= CHECKPOINT_AFTER_OPS
        {
            if self.checkpointer.is_none() {
                // An in-memory database has no path and no second connection to it.
                let path = self
                    .conn
                    .path()
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from);
                if let Some(path) = path {
                    self.checkpointer = Some(Checkpointer::start(&path)?);
                }
            }
            match &self.checkpointer {
                Some(c) if c.wal_frames() < WAL_FRAMES_CHECKPOINT_HERE => c.request(),
                _ => {
                    if !self.checkpoint_here()? {
                        // The checkpointer is still at it: try again shortly.
                        return Ok(Some(CHECKPOINT_BUSY_RETRY));
                    }
                    if let Some(c) = &self.checkpointer {
                        // Copied to the end: the next commit starts the WAL over.
                        c.set_wal_frames(0);
                    }
                }
            }
            self.commits_since_checkpoint = 0;
            self.ops_since_checkpoint = 0;
            return Ok(None);
        }
        Ok(Some(CHECKPOINT_AFTER_IDLE.saturating_sub(idle_for)))
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        // The truncating checkpoint needs no other checkpoint beside it.
        self.checkpointer = None;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_err)?;
        self.commits_since_checkpoint = 0;
        self.ops_since_checkpoint = 0;
        Ok(())
    }
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

/// Under load a worker's claim and the end of its attempt usually land in the same group
/// commit. Inside one transaction "claim, then finish" cannot be told from "finish straight
/// from queued", so the claim is skipped and its outcome, which applies to a message still
/// `queued` before its attempt anyway (see [`attempt_row`]), writes the pair as one update:
/// half the row and index writes for every message, which is both throughput and SD-card
/// wear. Returns, for each folded claim, the position of the outcome that carries it.
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

/// Finds message `id` for the outcome of attempt `attempt`: its row and path, or `None`
/// when the message is not in a state that attempt can end (the outcome is then ignored).
fn attempt_row(
    tx: &Transaction,
    id: i64,
    attempt: u32,
) -> rusqlite::Result<Option<(AttemptRow, String)>> {
    let row: Option<(String, u32, String)> = tx
        .prepare_cached("SELECT state, attempts, path FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, attempts, path)) = row else {
        return Ok(None);
    };
    let found = match state.as_str() {
        "processing" if attempts == attempt => AttemptRow::Processing,
        "queued" if attempts + 1 == attempt => AttemptRow::QueuedBefore,
        "queued" if attempts == attempt => AttemptRow::QueuedAfter,
        _ => return Ok(None),
    };
    Ok(Some((found, path)))
}

fn leave(from: AttemptRow, d: &mut CounterDelta) {
    match from {
        AttemptRow::Processing => d.processing -= 1,
        AttemptRow::QueuedBefore | AttemptRow::QueuedAfter => d.queued -= 1,
    }
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

fn apply(
    tx: &Transaction,
    op: &WriteOp,
    clock: &BatchClock,
    d: &mut CounterDelta,
) -> rusqlite::Result<OpOutcome> {
    let now = clock.ms;
    match op {
        WriteOp::Append(m) => append(tx, m, d),
        WriteOp::Claim { id, attempt, lease } => {
            let n = tx
                .prepare_cached(
                    "UPDATE messages SET state = 'processing', attempts = ?2, lease_owner = ?3, \
                     lease_until = ?4 WHERE id = ?1 AND state = 'queued' AND attempts = ?2 - 1",
                )?
                .execute(params![id, attempt, &*lease.owner, now + lease.duration_ms])?;
            if n == 0 {
                return not_applicable(tx, *id);
            }
            d.queued -= 1;
            d.processing += 1;
            Ok(OpOutcome::Claimed)
        }
        WriteOp::Complete {
            id,
            attempt,
            effect,
            processing_us,
        } => {
            let Some((from, path)) = attempt_row(tx, *id, *attempt)? else {
                return not_applicable(tx, *id);
            };
            tx.prepare_cached(
                "UPDATE messages SET state = 'processed', finished_at = ?2, last_error = NULL, \
                 attempts = ?3, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
            )?
            .execute(params![id, now, attempt])?;
            leave(from, d);
            d.processed += 1;
            d.processing_us += *processing_us as i64;
            let order = match effect {
                Effect::Nothing => None,
                Effect::Order(order) => Some(insert_order(tx, *id, &path, order, clock, d)?),
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
            attempt,
            error,
            next_attempt_at_ms,
        } => {
            let Some((from, _)) = attempt_row(tx, *id, *attempt)? else {
                return not_applicable(tx, *id);
            };
            tx.prepare_cached(
                "UPDATE messages SET state = 'queued', last_error = ?2, next_attempt_at = ?3, \
                 attempts = ?4, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
            )?
            .execute(params![id, error, next_attempt_at_ms, attempt])?;
            leave(from, d);
            d.queued += 1;
            d.retried += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::Dead { id, attempt, error } => {
            let Some((from, _)) = attempt_row(tx, *id, *attempt)? else {
                return not_applicable(tx, *id);
            };
            tx.prepare_cached(
                "UPDATE messages SET state = 'dead', last_error = ?2, finished_at = ?3, \
                 attempts = ?4, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
            )?
            .execute(params![id, error, now, attempt])?;
            leave(from, d);
            d.dead += 1;
            d.dead_now += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::RenewLeases { lease, live } => renew_leases(tx, lease, live, now, d),
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
                    // Named, not left to the planner: without statistics it prefers the
                    // (state, id) index and sorts every processed row by finish time.
                    "SELECT id FROM messages INDEXED BY messages_processed_finished \
                     WHERE state = 'processed' AND finished_at < ?1 ORDER BY finished_at LIMIT ?2",
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
        WriteOp::Rederive { id, order } => {
            let row: Option<(String, String)> = tx
                .prepare_cached("SELECT path, state FROM messages WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((path, state)) = row else {
                return Ok(OpOutcome::NotApplicable { state: None });
            };
            let change = upsert_order(tx, *id, &path, order, clock, d)?;
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

/// The lease keeper's tick (see [`WriteOp::RenewLeases`]). It walks the `processing` rows
/// only (through the state index: as many as attempts in hand, not the table).
fn renew_leases(
    tx: &Transaction,
    lease: &Lease,
    live: &[i64],
    now: i64,
    d: &mut CounterDelta,
) -> rusqlite::Result<OpOutcome> {
    let rows: Vec<(i64, Option<String>, Option<i64>)> = tx
        .prepare_cached(
            "SELECT id, lease_owner, lease_until FROM messages WHERE state = 'processing'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut extend = tx.prepare_cached("UPDATE messages SET lease_until = ?2 WHERE id = ?1")?;
    let mut requeue = tx.prepare_cached(
        "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL \
         WHERE id = ?1",
    )?;
    let (mut extended, mut requeued) = (0, Vec::new());
    for (id, owner, until) in rows {
        if live.binary_search(&id).is_ok() {
            if owner.as_deref() == Some(&*lease.owner) {
                extend.execute(params![id, now + lease.duration_ms])?;
                extended += 1;
            }
        } else if !matches!(until, Some(u) if u >= now) {
            requeue.execute([id])?;
            requeued.push(id);
        }
    }
    let n = requeued.len() as i64;
    d.processing -= n;
    d.queued += n;
    d.leases_expired += n;
    Ok(OpOutcome::LeasesRenewed { extended, requeued })
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
    clock: &BatchClock,
    d: &mut CounterDelta,
) -> rusqlite::Result<OrderChange> {
    let now = clock.ms;
    let fields = serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into());
    // A plain insert and `last_insert_rowid`, not `RETURNING id`: SQLite runs a RETURNING
    // statement through a temporary result table, which cost the writer measurable CPU per order.
    let inserted = tx
        .prepare_cached(
            "INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, currency, \
             email, size, site, quantity, profile, title, fields, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (source_path, order_number) DO NOTHING",
        )?
        .execute(params![
            message_id, path, o.order_number, o.product, o.amount_cents, o.currency, o.email, o.size,
            o.site, o.quantity, o.profile, o.title, fields, now
        ])?;
    let id = (inserted == 1).then(|| tx.last_insert_rowid());
    match id {
        Some(id) => {
            d.orders_created += 1;
            Ok(OrderChange::Created(Box::new(StoredOrder {
                id,
                message_id,
                source_path: path.to_string(),
                created_at: clock.text().to_owned(),
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
    clock: &BatchClock,
    d: &mut CounterDelta,
) -> rusqlite::Result<OrderChange> {
    let now = clock.ms;
    let existing: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, message_id FROM orders WHERE source_path = ?1 AND order_number = ?2",
        )?
        .query_row(params![path, o.order_number], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((order_id, first_message)) = existing else {
        return insert_order(tx, message_id, path, o, clock, d);
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
/// processing, dead now) are not stored: they are counted once at start-up. `peak` is the
/// queue's high-water mark when it rose since it was last written.
fn write_counters(tx: &Transaction, d: &CounterDelta, peak: Option<u64>) -> rusqlite::Result<()> {
    let mut add = tx.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
    )?;
    for (name, value) in d.totals() {
        if value != 0 {
            add.execute(params![name, value])?;
        }
    }
    if let Some(peak) = peak {
        tx.prepare_cached(
            "INSERT INTO counters (name, value) VALUES ('queue_size_peak', ?1) \
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute([peak as i64])?;
    }
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

    fn lease() -> Lease {
        Lease {
            owner: "node-a:1".into(),
            duration_ms: 30_000,
        }
    }

    fn claim(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Claim {
            id,
            attempt,
            lease: lease(),
        }
    }

    fn done(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Complete {
            id,
            attempt,
            effect: Effect::Nothing,
            processing_us: 1,
        }
    }

    fn retry(id: i64, attempt: u32) -> WriteOp {
        WriteOp::Retry {
            id,
            attempt,
            error: "later".into(),
            next_attempt_at_ms: 0,
        }
    }

    fn lease_of(w: &SqliteWriter, id: i64) -> (Option<String>, Option<i64>) {
        w.conn
            .query_row(
                "SELECT lease_owner, lease_until FROM messages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    #[test]
    fn claims_fold_into_the_op_that_ends_their_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message(), message()], 1, 0)
            .unwrap();

        // 1: claim + complete in one batch. 2: claim, retry, claim, dead in one batch.
        // 3: claim alone, completed in the next batch (not folded).
        let ops = [
            claim(1, 1),
            claim(2, 1),
            claim(3, 1),
            done(1, 1),
            retry(2, 1),
            claim(2, 2),
            WriteOp::Dead {
                id: 2,
                attempt: 2,
                error: "bad".into(),
            },
        ];
        let (outcomes, delta) = w.commit_batch(&ops, 2, 0).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Claimed);
        assert_eq!(outcomes[3], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 1), (MessageState::Processed, 1));
        assert_eq!(state(&r, 2), (MessageState::Dead, 2));
        assert_eq!(state(&r, 3), (MessageState::Processing, 1));
        assert_eq!(lease_of(&w, 3), (Some("node-a:1".into()), Some(30_002)));
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

        let (outcomes, _) = w.commit_batch(&[done(3, 1)], 3, 0).unwrap();
        assert_eq!(outcomes[0], OpOutcome::Completed { order: None });
        assert_eq!(state(&r, 3), (MessageState::Processed, 1));
        assert_eq!(lease_of(&w, 3), (None, None), "an outcome clears the lease");

        // A folded pair on a message that is not queued leaves it alone, and says so for both.
        let (outcomes, delta) = w.commit_batch(&[claim(1, 2), done(1, 2)], 4, 0).unwrap();
        let na = OpOutcome::NotApplicable {
            state: Some(MessageState::Processed),
        };
        assert_eq!(outcomes, vec![na.clone(), na]);
        assert_eq!(delta, CounterDelta::default());
        let c = r.counters().unwrap();
        assert_eq!((c.received, c.processed, c.dead, c.retried), (3, 2, 1, 1));
    }

    /// An idle writer sleeps until an op arrives when `maintain` says nothing is due: only
    /// commits that changed rows make a checkpoint due, once the writer has been idle for
    /// [`CHECKPOINT_AFTER_IDLE`]; an idle lease tick (a commit that changed nothing) does not.
    #[test]
    fn maintain_says_when_a_checkpoint_is_next_due() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "fresh: nothing due"
        );
        w.commit_batch(&[message()], 1, 1).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            Some(CHECKPOINT_AFTER_IDLE)
        );
        assert_eq!(
            w.maintain(Duration::from_millis(400)).unwrap(),
            Some(CHECKPOINT_AFTER_IDLE - Duration::from_millis(400))
        );
        assert_eq!(
            w.maintain(CHECKPOINT_AFTER_IDLE).unwrap(),
            None,
            "checkpointed"
        );
        let idle_tick = WriteOp::RenewLeases {
            lease: lease(),
            live: vec![],
        };
        w.commit_batch(&[idle_tick], 2, 1).unwrap();
        assert_eq!(
            w.maintain(Duration::ZERO).unwrap(),
            None,
            "a commit that changed nothing needs no checkpoint"
        );
        w.commit_batch(&[], 3, 2).unwrap();
        assert!(
            w.maintain(Duration::ZERO).unwrap().is_some(),
            "a higher queue peak is a change"
        );
    }

    /// A due checkpoint is handed to the checkpointer thread, which copies the WAL back on its
    /// own connection; the writer's final checkpoint stops the thread and truncates the WAL.
    #[test]
    fn the_checkpointer_thread_copies_the_wal_back_and_stops_before_the_final_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let (mut w, _r) = sqlite::open(&db, 1).unwrap();
        w.commit_batch(&[message()], 1, 1).unwrap();
        assert!(
            w.checkpointer.is_none(),
            "no thread before a checkpoint is due"
        );
        assert_eq!(w.maintain(CHECKPOINT_AFTER_IDLE).unwrap(), None);
        let checkpointer = w.checkpointer.as_ref().expect("started when due");
        let mut waited = 0;
        while checkpointer.wal_frames() == 0 {
            assert!(
                waited < 1000,
                "the checkpointer never reported a checkpoint"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
        }
        w.checkpoint().unwrap();
        assert!(
            w.checkpointer.is_none(),
            "stopped before the truncating checkpoint"
        );
        let wal = std::fs::metadata(dir.path().join("t.db-wal")).unwrap();
        assert_eq!(wal.len(), 0, "the final checkpoint truncated the WAL");
    }

    /// The bug this guards against: a claim held back by a failed commit landed after its own
    /// outcome and left the message `processing` with nobody working on it.
    #[test]
    fn a_claim_landing_after_its_outcome_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message()], 1, 0).unwrap();

        // Message 1: the outcome lands first (its claim was in a failed commit), then the claim.
        let (o, d) = w.commit_batch(&[done(1, 1)], 2, 0).unwrap();
        assert_eq!(o[0], OpOutcome::Completed { order: None });
        assert_eq!((d.queued, d.processing, d.processed), (-1, 0, 1));
        let (o, d) = w.commit_batch(&[claim(1, 1)], 3, 0).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        assert_eq!(d, CounterDelta::default());
        assert_eq!(state(&r, 1), (MessageState::Processed, 1));

        // Message 2: a retry lands before its claim; the late claim must not take the message
        // from the next attempt, whose claim (attempt 2) then applies.
        w.commit_batch(&[retry(2, 1)], 4, 0).unwrap();
        assert_eq!(state(&r, 2), (MessageState::Queued, 1));
        let (o, _) = w.commit_batch(&[claim(2, 1)], 5, 0).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        assert_eq!(state(&r, 2), (MessageState::Queued, 1));
        let (o, _) = w.commit_batch(&[claim(2, 2)], 6, 0).unwrap();
        assert_eq!(o[0], OpOutcome::Claimed);
        assert_eq!(state(&r, 2), (MessageState::Processing, 2));
        // An outcome of an older attempt is ignored.
        let (o, _) = w.commit_batch(&[done(2, 1)], 7, 0).unwrap();
        assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
        w.commit_batch(&[done(2, 2)], 8, 0).unwrap();
        assert_eq!(state(&r, 2), (MessageState::Processed, 2));
        let c = r.counters().unwrap();
        assert_eq!((c.processed, c.queued, c.processing), (2, 0, 0));
    }

    #[test]
    fn leases_are_renewed_for_live_work_and_expired_ones_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
        w.commit_batch(&[message(), message(), message()], 1, 0)
            .unwrap();
        // All three claimed at t=1000 with a 30 s lease (until 31_000).
        w.commit_batch(&[claim(1, 1), claim(2, 1), claim(3, 1)], 1_000, 0)
            .unwrap();
        let renew = |live: Vec<i64>| WriteOp::RenewLeases {
            lease: lease(),
            live,
        };
        // Before expiry nothing is queued again, live or not; live ones are extended.
        let (o, _) = w.commit_batch(&[renew(vec![1])], 20_000, 0).unwrap();
        assert_eq!(
            o[0],
            OpOutcome::LeasesRenewed {
                extended: 1,
                requeued: vec![]
            }
        );
        assert_eq!(lease_of(&w, 1).1, Some(50_000));
        // After expiry: 1 is live (renewed), 2 and 3 are nobody's and go back to queued.
        let (o, d) = w.commit_batch(&[renew(vec![1])], 40_000, 0).unwrap();
        assert_eq!(
            o[0],
            OpOutcome::LeasesRenewed {
                extended: 1,
                requeued: vec![2, 3]
            }
        );
        assert_eq!((d.processing, d.queued, d.leases_expired), (-2, 2, 2));
        assert_eq!(state(&r, 2), (MessageState::Queued, 1), "attempts kept");
        assert_eq!(lease_of(&w, 2), (None, None));
        assert_eq!(r.expired_leases(40_000).unwrap(), 0);
        assert_eq!(
            r.expired_leases(80_000).unwrap(),
            1,
            "1's lease ends at 70 s"
        );
        // A late outcome of 2's attempt still counts (the attempt did finish).
        let (o, _) = w.commit_batch(&[done(2, 1)], 41_000, 0).unwrap();
        assert_eq!(o[0], OpOutcome::Completed { order: None });
        assert_eq!(r.counters().unwrap().leases_expired, 2);

        // Recovery at start: this node's leases and expired ones; another node's live one stays.
        let other = WriteOp::Claim {
            id: 3,
            attempt: 2,
            lease: Lease {
                owner: "node-b:1".into(),
                duration_ms: 30_000,
            },
        };
        w.commit_batch(&[other], 50_000, 0).unwrap();
        assert_eq!(w.recover_in_flight("node-a:1", 60_000).unwrap(), 1);
        assert_eq!(state(&r, 1).0, MessageState::Queued);
        assert_eq!(state(&r, 3).0, MessageState::Processing);
        assert_eq!(w.recover_in_flight("node-a:1", 90_000).unwrap(), 1);
        assert_eq!(state(&r, 3), (MessageState::Queued, 2));
    }
}
