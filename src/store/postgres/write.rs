//! This node's write connection. Only the writer thread holds it: one transaction per batch
//! (group commit), answered only after `COMMIT`. Other nodes write the same tables through
//! their own connections, so every state change names the state it expects (and, for the end
//! of an attempt, the node holding the lease): a row another node has moved answers
//! `NotApplicable`, exactly as a stale op does on SQLite.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Row, Statement, Transaction};

use super::schema::RETENTION_LOCK;
use super::{pg_err, PostgresOptions, DB_NOW_MS, EVENTS_CHANNEL};
use crate::store::Order;
use crate::store::{
    CounterDelta, Effect, Lease, MessageState, NewMessage, OpOutcome, OrderChange, StoreError,
    StoreResult, StoredOrder, WriteOp, WriteStore,
};
use crate::time::{now_ms, rfc3339};

/// How often the node's heartbeat row is refreshed (the writer calls `maintain` when it is due,
/// busy or idle).
const HEARTBEAT: Duration = Duration::from_secs(1);

pub struct PostgresWriter {
    client: Client,
    /// To connect again after the server restarted or the connection broke.
    config: postgres::Config,
    cache: Cache,
    node: String,
    started_at: i64,
    last_heartbeat: Option<Instant>,
    /// The highest `queue_size_peak` written, so an unchanged peak costs no statement.
    peak_written: u64,
    /// The last statement failed for want of a working connection (the client may not have
    /// noticed it is closed yet): connect again before the next.
    broken: bool,
}

impl PostgresWriter {
    pub(super) fn new(
        client: Client,
        config: postgres::Config,
        options: &PostgresOptions,
    ) -> StoreResult<Self> {
        Ok(PostgresWriter {
            client,
            config,
            cache: Cache::default(),
            node: options.node.clone(),
            started_at: now_ms(),
            last_heartbeat: None,
            peak_written: 0,
            broken: false,
        })
    }

    /// A broken connection (the server restarted, the network dropped) is replaced before the
    /// next transaction; the failed batch itself was answered with the error, nothing kept.
    fn connected(&mut self) -> StoreResult<()> {
        if self.broken || self.client.is_closed() {
            self.client = super::connect(&self.config)?;
            self.cache = Cache::default();
            self.broken = false;
            log::info!("connected to PostgreSQL again");
        }
        Ok(())
    }

    /// Notes a failure that says the connection is gone, so the next call connects again.
    fn watch<T>(&mut self, result: StoreResult<T>) -> StoreResult<T> {
        if let Err(StoreError::Io(_)) = &result {
            self.broken = true;
        }
        result
    }

    fn heartbeat(&mut self) -> StoreResult<()> {
        self.client
            .execute(
                &format!(
                    "INSERT INTO nodes (id, started_at, last_seen) VALUES ($1, $2, {DB_NOW_MS}) \
                     ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
                     started_at = excluded.started_at"
                ),
                &[&self.node, &self.started_at],
            )
            .map_err(pg_err)?;
        self.last_heartbeat = Some(Instant::now());
        Ok(())
    }
}

/// Statements prepared once per connection (each saves a parse round trip per use).
#[derive(Default)]
struct Cache(HashMap<String, Statement>);

/// One batch's transaction and what it needs to apply ops.
struct Batch<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    cache: &'a mut Cache,
    node: &'a str,
    now: i64,
    d: CounterDelta,
    /// `LISTEN/NOTIFY` payloads, sent in the same transaction (delivered only if it commits).
    notes: Vec<String>,
}

type PgResult<T> = Result<T, postgres::Error>;

impl Batch<'_, '_> {
    fn stmt(&mut self, sql: &str) -> PgResult<Statement> {
        if let Some(s) = self.cache.0.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.cache.0.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn exec(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let s = self.stmt(sql)?;
        self.tx.execute(&s, params)
    }

    fn opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Option<Row>> {
        let s = self.stmt(sql)?;
        self.tx.query_opt(&s, params)
    }

    fn rows(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Row>> {
        let s = self.stmt(sql)?;
        self.tx.query(&s, params)
    }

    fn note(&mut self, kind: &str, id: i64) {
        self.notes.push(format!("{}\t{kind}\t{id}", self.node));
    }
}

impl PostgresWriter {
    fn commit_batch_once(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        let mut tx = self.client.transaction().map_err(pg_err)?;
        let mut batch = Batch {
            tx: &mut tx,
            cache: &mut self.cache,
            node: &self.node,
            now: now_ms,
            d: CounterDelta::default(),
            notes: Vec::new(),
        };
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            outcomes.push(apply(&mut batch, op).map_err(pg_err)?);
        }
        let peak = (queue_size_peak > self.peak_written).then_some(queue_size_peak);
        write_counters(&mut batch, peak).map_err(pg_err)?;
        if !batch.notes.is_empty() {
            let notes = std::mem::take(&mut batch.notes);
            batch
                .exec(
                    "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n",
                    &[&EVENTS_CHANNEL, &notes],
                )
                .map_err(pg_err)?;
        }
        let delta = batch.d;
        tx.commit().map_err(pg_err)?;
        if let Some(peak) = peak {
            self.peak_written = peak;
        }
        Ok((outcomes, delta))
    }
}

impl PostgresWriter {
    fn recover_once(&mut self, owner: &str) -> StoreResult<u64> {
        let mut tx = self.client.transaction().map_err(pg_err)?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL \
                     FROM (SELECT id FROM messages WHERE state = 'processing' \
                           AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until IS NULL \
                                OR lease_until < {DB_NOW_MS}) \
                           FOR UPDATE SKIP LOCKED) r WHERE m.id = r.id"
                ),
                &[&owner],
            )
            .map_err(pg_err)? as i64;
        let delta = CounterDelta {
            processing: -n,
            queued: n,
            ..CounterDelta::default()
        };
        let mut batch = Batch {
            tx: &mut tx,
            cache: &mut self.cache,
            node: &self.node,
            now: now_ms(),
            d: delta,
            notes: Vec::new(),
        };
        write_counters(&mut batch, None).map_err(pg_err)?;
        tx.commit().map_err(pg_err)?;
        Ok(n as u64)
    }
}

impl WriteStore for PostgresWriter {
    fn commit_batch(
        &mut self,
        ops: &[WriteOp],
        now_ms: i64,
        queue_size_peak: u64,
    ) -> StoreResult<(Vec<OpOutcome>, CounterDelta)> {
        self.connected()?;
        let result = self.commit_batch_once(ops, now_ms, queue_size_peak);
        self.watch(result)
    }

    /// This node's own leases (`owner`: it stopped or crashed holding them), those nobody
    /// holds, and those whose lease ran out; another node's live leases are its own. Leases
    /// are compared on the database's clock, so `now_ms` (this node's) is not used.
    fn recover_in_flight(&mut self, owner: &str, _now_ms: i64) -> StoreResult<u64> {
        self.connected()?;
        let result = self.recover_once(owner);
        self.watch(result)
    }

    /// The heartbeat: the node list shows nodes seen in the last few seconds. (A command that
    /// writes directly never calls this, so it never shows as a node.) The next one is due a
    /// `HEARTBEAT` after this one, busy or idle.
    fn maintain(&mut self, _idle_for: Duration) -> StoreResult<Option<Duration>> {
        self.connected()?;
        if self.last_heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
            let beat = self.heartbeat();
            self.watch(beat)?;
        }
        let since = self.last_heartbeat.map_or(HEARTBEAT, |t| t.elapsed());
        Ok(Some(HEARTBEAT.saturating_sub(since)))
    }

    /// At a clean stop the node leaves the node list (PostgreSQL makes its own commits
    /// durable; there is no file to checkpoint).
    fn checkpoint(&mut self) -> StoreResult<()> {
        self.connected()?;
        self.client
            .execute("DELETE FROM nodes WHERE id = $1", &[&self.node])
            .map_err(pg_err)?;
        Ok(())
    }
}

fn apply(b: &mut Batch, op: &WriteOp) -> PgResult<OpOutcome> {
    let now = b.now;
    match op {
        WriteOp::Append(m) => append(b, m),
        WriteOp::Claim { id, attempt, lease } => {
            // Only attempt `attempt` of a message still `queued` after `attempt - 1`: a claim
            // another node made first, or a stale one, answers NotApplicable. SKIP LOCKED: a
            // row another node is changing right now is not waited for; its change decides.
            let attempt = *attempt as i32;
            let owner: &str = &lease.owner;
            let n = b.exec(
                &format!(
                    "UPDATE messages m SET state = 'processing', attempts = $2, \
                     lease_owner = $3, lease_until = {DB_NOW_MS} + $4 \
                     FROM (SELECT id FROM messages WHERE id = $1 AND state = 'queued' \
                           AND attempts = $2 - 1 FOR UPDATE SKIP LOCKED) c WHERE m.id = c.id"
                ),
                &[id, &attempt, &owner, &lease.duration_ms],
            )?;
            if n == 0 {
                return not_applicable(b, *id);
            }
            b.d.queued -= 1;
            b.d.processing += 1;
            Ok(OpOutcome::Claimed)
        }
        WriteOp::Complete {
            id,
            attempt,
            effect,
            processing_us,
        } => {
            // Every outcome: only the attempt this node's claim started and still leases.
            let (node, attempt) = (b.node.to_string(), *attempt as i32);
            let row = b.opt(
                "UPDATE messages SET state = 'processed', finished_at = $2, last_error = NULL, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND state = 'processing' AND lease_owner = $3 AND attempts = $4 \
                 RETURNING path",
                &[id, &now, &node, &attempt],
            )?;
            let Some(row) = row else {
                return not_applicable(b, *id);
            };
            let path: String = row.get(0);
            b.d.processing -= 1;
            b.d.processed += 1;
            b.d.processing_us += *processing_us as i64;
            let order = match effect {
                Effect::Nothing => None,
                Effect::Order(order) => Some(insert_order(b, *id, &path, order)?),
            };
            match &order {
                Some(OrderChange::Duplicate { message_id }) => {
                    let note = format!("duplicate order: already stored from message {message_id}");
                    b.exec("UPDATE messages SET note = $2 WHERE id = $1", &[id, &note])?;
                }
                Some(OrderChange::Created(o)) => b.note("order", o.id),
                _ => {}
            }
            Ok(OpOutcome::Completed { order })
        }
        WriteOp::Retry {
            id,
            attempt,
            error,
            next_attempt_at_ms,
        } => {
            let (node, attempt) = (b.node.to_string(), *attempt as i32);
            let n = b.exec(
                "UPDATE messages SET state = 'queued', last_error = $2, next_attempt_at = $3, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND state = 'processing' AND lease_owner = $4 AND attempts = $5",
                &[id, error, next_attempt_at_ms, &node, &attempt],
            )?;
            if n == 0 {
                return not_applicable(b, *id);
            }
            b.d.processing -= 1;
            b.d.queued += 1;
            b.d.retried += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::Dead { id, attempt, error } => {
            let (node, attempt) = (b.node.to_string(), *attempt as i32);
            let n = b.exec(
                "UPDATE messages SET state = 'dead', last_error = $2, finished_at = $3, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND state = 'processing' AND lease_owner = $4 AND attempts = $5",
                &[id, error, &now, &node, &attempt],
            )?;
            if n == 0 {
                return not_applicable(b, *id);
            }
            b.d.processing -= 1;
            b.d.dead += 1;
            b.d.dead_now += 1;
            b.note("dead", *id);
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::RequeueDead { id, actor } => {
            let n = match id {
                Some(id) => b.exec(
                    "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
                     finished_at = NULL WHERE id = $1 AND state = 'dead'",
                    &[id],
                )?,
                None => b.exec(
                    "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
                     finished_at = NULL WHERE state = 'dead'",
                    &[],
                )?,
            } as i64;
            if n == 0 {
                if let Some(id) = id {
                    return not_applicable(b, *id);
                }
            }
            record_action(b, *id, "retry", actor, n)?;
            b.d.dead_now -= n;
            b.d.queued += n;
            b.d.requeued += n;
            Ok(OpOutcome::Changed(n as u64))
        }
        WriteOp::Discard { id, actor } => {
            let note = format!("discarded by {actor} at {}", rfc3339(now));
            let n = b.exec(
                "UPDATE messages SET state = 'discarded', note = $2 WHERE id = $1 AND state = 'dead'",
                &[id, &note],
            )?;
            if n == 0 {
                return not_applicable(b, *id);
            }
            record_action(b, Some(*id), "discard", actor, 1)?;
            b.d.dead_now -= 1;
            b.d.discarded += 1;
            Ok(OpOutcome::Changed(1))
        }
        WriteOp::PurgeProcessed {
            finished_before_ms,
            limit,
        } => {
            // One node sweeps at a time; the others find the lock taken and do nothing.
            let locked: bool = b
                .opt("SELECT pg_try_advisory_xact_lock($1)", &[&RETENTION_LOCK])?
                .map(|r| r.get(0))
                .unwrap_or(false);
            if !locked {
                return Ok(OpOutcome::Changed(0));
            }
            let limit = *limit as i64;
            let ids: Vec<i64> = b
                .rows(
                    "DELETE FROM messages WHERE id IN (SELECT id FROM messages \
                     WHERE state = 'processed' AND finished_at < $1 ORDER BY id LIMIT $2 \
                     FOR UPDATE SKIP LOCKED) RETURNING id",
                    &[finished_before_ms, &limit],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !ids.is_empty() {
                b.exec("DELETE FROM bodies WHERE message_id = ANY($1)", &[&ids])?;
            }
            b.d.purged += ids.len() as i64;
            Ok(OpOutcome::Changed(ids.len() as u64))
        }
        WriteOp::Rederive { id, order } => {
            let row = b.opt("SELECT path, state FROM messages WHERE id = $1", &[id])?;
            let Some(row) = row else {
                return Ok(OpOutcome::NotApplicable { state: None });
            };
            let (path, state): (String, String) = (row.get(0), row.get(1));
            let change = upsert_order(b, *id, &path, order)?;
            if state == "dead" {
                b.exec(
                    "UPDATE messages SET state = 'processed', finished_at = $2, last_error = NULL, \
                     note = 'order derived by reprocess' WHERE id = $1",
                    &[id, &now],
                )?;
                b.d.dead_now -= 1;
                b.d.processed += 1;
            }
            Ok(OpOutcome::Rederived(change))
        }
        WriteOp::RenewLeases { lease, live } => renew_leases(b, lease, live),
    }
}

/// The lease keeper's tick (see [`WriteOp::RenewLeases`]) on a shared database: extends this
/// node's leases on the attempts it holds (`live`), and puts back to `queued` every
/// `processing` message, whoever's, whose lease ran out on the database's clock and that is
/// not one of this node's live attempts (a node that died, or lost its outcome). Rows another
/// node is changing right now are skipped (SKIP LOCKED); the next tick sees them.
fn renew_leases(b: &mut Batch, lease: &Lease, live: &[i64]) -> PgResult<OpOutcome> {
    let owner: &str = &lease.owner;
    let live = live.to_vec();
    let extended = if live.is_empty() {
        0
    } else {
        b.exec(
            &format!(
                "UPDATE messages SET lease_until = {DB_NOW_MS} + $3 \
                 WHERE id = ANY($1) AND state = 'processing' AND lease_owner = $2"
            ),
            &[&live, &owner, &lease.duration_ms],
        )?
    };
    let requeued: Vec<i64> = b
        .rows(
            &format!(
                "UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_until = NULL \
                 FROM (SELECT id FROM messages WHERE state = 'processing' \
                       AND (lease_until IS NULL OR lease_until < {DB_NOW_MS}) \
                       AND NOT (lease_owner IS NOT DISTINCT FROM $1 AND id = ANY($2)) \
                       FOR UPDATE SKIP LOCKED) e \
                 WHERE m.id = e.id RETURNING m.id"
            ),
            &[&owner, &live],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let n = requeued.len() as i64;
    b.d.processing -= n;
    b.d.queued += n;
    b.d.leases_expired += n;
    Ok(OpOutcome::LeasesRenewed { extended, requeued })
}

fn append(b: &mut Batch, m: &NewMessage) -> PgResult<OpOutcome> {
    let size = m.payload.len() as i64;
    let row = b.opt(
        "INSERT INTO messages (received_at, path, remote_addr, size, idem_key, state) \
         VALUES ($1, $2, $3, $4, $5, 'queued') \
         ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING RETURNING id",
        &[
            &m.received_at_ms,
            &m.path,
            &m.remote_addr,
            &size,
            &m.idem_key,
        ],
    )?;
    let Some(row) = row else {
        let id: i64 = b
            .opt(
                "SELECT id FROM messages WHERE idem_key = $1",
                &[&m.idem_key],
            )?
            .map(|r| r.get(0))
            .unwrap_or(0);
        b.d.duplicates += 1;
        return Ok(OpOutcome::Appended {
            id,
            duplicate: true,
        });
    };
    let id: i64 = row.get(0);
    b.exec(
        "INSERT INTO bodies (message_id, headers, payload) VALUES ($1, $2, $3)",
        &[&id, &m.headers_json, &m.payload],
    )?;
    b.d.received += 1;
    b.d.queued += 1;
    b.note("received", id);
    Ok(OpOutcome::Appended {
        id,
        duplicate: false,
    })
}

fn not_applicable(b: &mut Batch, id: i64) -> PgResult<OpOutcome> {
    let state: Option<String> = b
        .opt("SELECT state FROM messages WHERE id = $1", &[&id])?
        .map(|r| r.get(0));
    Ok(OpOutcome::NotApplicable {
        state: state.as_deref().and_then(MessageState::parse),
    })
}

fn record_action(
    b: &mut Batch,
    id: Option<i64>,
    action: &str,
    actor: &str,
    n: i64,
) -> PgResult<()> {
    let now = b.now;
    b.exec(
        "INSERT INTO operator_actions (message_id, at, action, actor, affected) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&id, &now, &action, &actor, &n],
    )?;
    Ok(())
}

fn insert_order(b: &mut Batch, message_id: i64, path: &str, o: &Order) -> PgResult<OrderChange> {
    let fields = serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into());
    let now = b.now;
    let row = b.opt(
        "INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, \
         currency, email, size, site, quantity, profile, title, fields, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (source_path, order_number) DO NOTHING RETURNING id",
        &with_order_columns(&[&message_id, &path, &o.order_number], o, &fields, &now),
    )?;
    match row {
        Some(row) => {
            b.d.orders_created += 1;
            Ok(OrderChange::Created(Box::new(StoredOrder {
                id: row.get(0),
                message_id,
                source_path: path.to_string(),
                created_at: rfc3339(now),
                updated_at: None,
                order: o.clone(),
            })))
        }
        None => {
            let first: i64 = b
                .opt(
                    "SELECT message_id FROM orders WHERE source_path = $1 AND order_number = $2",
                    &[&path, &o.order_number],
                )?
                .map(|r| r.get(0))
                .unwrap_or(0);
            Ok(OrderChange::Duplicate { message_id: first })
        }
    }
}

/// The parameters of an order's row in the one order both statements number them: `first`
/// (the keys), the order's columns from `product` to `fields`, then the time (`created_at` or
/// `updated_at`).
fn with_order_columns<'a>(
    first: &[&'a (dyn ToSql + Sync)],
    o: &'a Order,
    fields: &'a String,
    now: &'a i64,
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut params = first.to_vec();
    params.extend_from_slice(&[
        &o.product,
        &o.amount_cents,
        &o.currency,
        &o.email,
        &o.size,
        &o.site,
        &o.quantity,
        &o.profile,
        &o.title,
        fields,
        now,
    ]);
    params
}

/// As on SQLite: replace the stored order by what the current parser makes of the same body,
/// only if that differs.
fn upsert_order(b: &mut Batch, message_id: i64, path: &str, o: &Order) -> PgResult<OrderChange> {
    let existing = b.opt(
        "SELECT id, message_id FROM orders WHERE source_path = $1 AND order_number = $2",
        &[&path, &o.order_number],
    )?;
    let Some(existing) = existing else {
        return insert_order(b, message_id, path, o);
    };
    let (order_id, first_message): (i64, i64) = (existing.get(0), existing.get(1));
    if first_message != message_id {
        return Ok(OrderChange::Duplicate {
            message_id: first_message,
        });
    }
    let fields = serde_json::to_string(&o.fields).unwrap_or_else(|_| "{}".into());
    let now = b.now;
    let n = b.exec(
        "UPDATE orders SET product = $2, amount_cents = $3, currency = $4, email = $5, size = $6, \
         site = $7, quantity = $8, profile = $9, title = $10, fields = $11, updated_at = $12 \
         WHERE id = $1 AND NOT (product IS NOT DISTINCT FROM $2 AND amount_cents IS NOT DISTINCT FROM $3 \
         AND currency IS NOT DISTINCT FROM $4 AND email IS NOT DISTINCT FROM $5 \
         AND size IS NOT DISTINCT FROM $6 AND site IS NOT DISTINCT FROM $7 AND quantity = $8 \
         AND profile IS NOT DISTINCT FROM $9 AND title IS NOT DISTINCT FROM $10 AND fields = $11)",
        &with_order_columns(&[&order_id], o, &fields, &now),
    )?;
    Ok(if n == 0 {
        OrderChange::Unchanged
    } else {
        OrderChange::Changed
    })
}

/// The counter names this node adds to: the durable totals and the gauges.
fn counter_rows(d: &CounterDelta) -> (Vec<&'static str>, Vec<i64>) {
    let gauges = [
        ("queued", d.queued),
        ("processing", d.processing),
        ("dead_now", d.dead_now),
    ];
    d.totals()
        .into_iter()
        .chain(gauges)
        .filter(|(_, v)| *v != 0)
        .unzip()
}

/// This node's counter rows move in the same transaction as the rows they count: one
/// statement for all of them.
fn write_counters(b: &mut Batch, peak: Option<u64>) -> PgResult<()> {
    let (names, values) = counter_rows(&b.d);
    let node = b.node.to_string();
    if !names.is_empty() {
        b.exec(
            "INSERT INTO counters (node, name, value) \
             SELECT $1, n, v FROM unnest($2::text[], $3::bigint[]) AS t(n, v) \
             ON CONFLICT (node, name) DO UPDATE SET value = counters.value + excluded.value",
            &[&node, &names, &values],
        )?;
    }
    if let Some(peak) = peak {
        let peak = peak as i64;
        b.exec(
            "INSERT INTO counters (node, name, value) VALUES ($1, 'queue_size_peak', $2) \
             ON CONFLICT (node, name) DO UPDATE SET value = greatest(counters.value, excluded.value)",
            &[&node, &peak],
        )?;
    }
    Ok(())
}
