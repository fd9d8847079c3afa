//! Read connections for the HTTP API, the feeder, the stats refresher and `reprocess`. Each
//! query runs on its own (READ COMMITTED), so a reader sees every node's committed writes.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use postgres::types::ToSql;
use postgres::{Client, Config, Row};

use super::{cells, connect, pg_err, DB_NOW_MS};
use crate::base::time::{now_ms, rfc3339};
use crate::store::error::StoreResult;
use crate::store::model::{
    ClusterCounters, CounterDelta, DeadLetter, DurableCounters, LogQuery, MessageDetail,
    MessageState, MessageSummary, NodeStatus, OperatorAction, OrderQuery, PageAfter, RawFilter,
    RawMessage, StorageHealth, StoredOrder,
};
use crate::store::model::{
    DeadLetterQuery, Payload, QueuedJob, Rejection, RejectionQuery, SourceCounters,
    PAYLOAD_PREVIEW_BYTES,
};
use crate::store::rows::{self, ORDER_COLUMNS, SUMMARY_COLUMNS};
use crate::store::seam::ReadStore;

/// A node whose heartbeat is older than this is left out of the node list.
pub const NODE_ALIVE_MS: i64 = 5_000;
/// The database size is asked for at most this often (the stats page asks on every request).
const SIZE_EVERY_MS: i64 = 5_000;
/// `size` before the first answer, or when the last question failed.
const UNKNOWN_SIZE: u64 = u64::MAX;
/// How long a new message is left to the node that received it (see `due_jobs`).
pub const FRESH_MS: i64 = 2_000;
/// Idle read connections kept.
const POOL: usize = 8;

pub struct PostgresReader {
    config: Config,
    idle: Mutex<Vec<Client>>,
    size: AtomicU64,
    size_at: AtomicI64,
}

impl PostgresReader {
    pub(super) fn new(config: Config, clients: Vec<Client>) -> Self {
        PostgresReader {
            config,
            idle: Mutex::new(clients),
            size: AtomicU64::new(UNKNOWN_SIZE),
            size_at: AtomicI64::new(0),
        }
    }

    /// Runs `f` on a pooled connection; opens another when all are busy. A connection that
    /// failed is dropped rather than pooled (it may be broken: a restarted server).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.config)?,
        };
        let result = f(&mut client);
        if result.is_ok() {
            if let Ok(mut v) = self.idle.lock() {
                if v.len() < POOL {
                    v.push(client);
                }
            }
        }
        result.map_err(pg_err)
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        self.with(|c| {
            let stmt = c.prepare(sql)?;
            c.query(&stmt, params)
        })
    }
}

fn summary(r: &Row) -> StoreResult<MessageSummary> {
    cells(r).map(|c| rows::summary(&c))
}

pub(super) fn stored_order(r: &Row) -> StoreResult<StoredOrder> {
    cells(r).map(|c| rows::stored_order(&c))
}

impl ReadStore for PostgresReader {
    /// Every node's rows summed (the peak: their maximum). The gauges are summed the same
    /// way, so they are the cluster's, and reading them never counts the messages table.
    fn counters(&self) -> StoreResult<DurableCounters> {
        Ok(self
            .cluster_counters("")?
            .map(|c| c.all)
            .unwrap_or_default())
    }

    fn cluster_counters(&self, node: &str) -> StoreResult<Option<ClusterCounters>> {
        // One statement, so `all` and `others` come from the same snapshot.
        let rows = self.query(
            "SELECT name, \
             CASE WHEN name = 'queue_size_peak' THEN max(value) ELSE sum(value) END::bigint, \
             coalesce(sum(value) FILTER (WHERE node <> $1), 0)::bigint \
             FROM counters GROUP BY name",
            &[&node],
        )?;
        let mut all = DurableCounters::default();
        let mut others = CounterDelta::default();
        for row in rows {
            let name: String = row.get(0);
            let (sum, other): (i64, i64) = (row.get(1), row.get(2));
            let v = sum.max(0) as u64;
            let (total, delta) = match name.as_str() {
                "received" => (&mut all.received, &mut others.received),
                "duplicates" => (&mut all.duplicates, &mut others.duplicates),
                "processed" => (&mut all.processed, &mut others.processed),
                "dead" => (&mut all.dead, &mut others.dead),
                "retried" => (&mut all.retried, &mut others.retried),
                "requeued" => (&mut all.requeued, &mut others.requeued),
                "discarded" => (&mut all.discarded, &mut others.discarded),
                "purged" => (&mut all.purged, &mut others.purged),
                "orders_created" => (&mut all.orders_created, &mut others.orders_created),
                "leases_expired" => (&mut all.leases_expired, &mut others.leases_expired),
                "processing_us_total" => (&mut all.processing_us_total, &mut others.processing_us),
                "queued" => (&mut all.queued, &mut others.queued),
                "processing" => (&mut all.processing, &mut others.processing),
                "dead_now" => (&mut all.dead_now, &mut others.dead_now),
                "deliveries_delivered" => (
                    &mut all.deliveries_delivered,
                    &mut others.deliveries_delivered,
                ),
                "deliveries_dead" => (&mut all.deliveries_dead, &mut others.deliveries_dead),
                "queue_size_peak" => {
                    all.queue_size_peak = v;
                    continue;
                }
                _ => continue,
            };
            *total = v;
            *delta = other;
        }
        Ok(Some(ClusterCounters { all, others }))
    }

    fn message(&self, id: i64) -> StoreResult<Option<MessageDetail>> {
        let rows = self.query(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, b.headers, b.payload, next_attempt_at FROM messages \
                 LEFT JOIN bodies b ON b.message_id = messages.id WHERE id = $1"
            ),
            &[&id],
        )?;
        rows.first()
            .map(|r| {
                let next: i64 = r.get(13);
                Ok(MessageDetail {
                    summary: summary(r)?,
                    headers_json: r
                        .get::<_, Option<String>>(11)
                        .unwrap_or_else(|| "{}".into()),
                    payload: r.get::<_, Option<Vec<u8>>>(12).unwrap_or_default(),
                    next_attempt_at: (next > 0).then(|| rfc3339(next)),
                })
            })
            .transpose()
    }

    fn logs(&self, q: &LogQuery) -> StoreResult<Vec<MessageSummary>> {
        let before = q.before_id.unwrap_or(i64::MAX);
        let limit = q.limit as i64;
        let source = q.source.as_deref();
        let rows = match q.status {
            Some(state) => self.query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM messages WHERE state = $1 AND id < $2 \
                     AND ($4::text IS NULL OR source = $4) ORDER BY id DESC LIMIT $3"
                ),
                &[&state.as_str(), &before, &limit, &source],
            )?,
            None => self.query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM messages WHERE id < $1 \
                     AND ($3::text IS NULL OR source = $3) ORDER BY id DESC LIMIT $2"
                ),
                &[&before, &limit, &source],
            )?,
        };
        rows.iter().map(summary).collect()
    }

    fn dead_letters(&self, query: &DeadLetterQuery) -> StoreResult<Vec<DeadLetter>> {
        let rows = self.query(
            // The preview is cut in SQL: the whole body never reaches this process.
            "SELECT m.id, m.received_at, m.attempts, m.last_error, m.finished_at, \
             substring(b.payload FROM 1 FOR $3), m.size, m.source \
             FROM messages m LEFT JOIN bodies b ON b.message_id = m.id \
             WHERE m.state = 'dead' AND m.id > $1 AND ($4::text IS NULL OR m.source = $4) \
             ORDER BY m.id LIMIT $2",
            &[
                &query.after_id.unwrap_or(0),
                &(query.limit as i64),
                &(PAYLOAD_PREVIEW_BYTES as i32),
                &query.source,
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                received_at: rfc3339(r.get(1)),
                source: r.get(7),
                attempts: r.get::<_, i32>(2).max(0) as u32,
                last_error: r.get(3),
                failed_at: r.get::<_, Option<i64>>(4).map(rfc3339),
                payload_preview: r.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
                payload_size: r.get::<_, i64>(6).max(0) as u64,
            })
            .collect())
    }

    fn rejections(&self, q: &RejectionQuery) -> StoreResult<Vec<Rejection>> {
        let rows = self.query(
            "SELECT id, at, source, remote_addr, reason, size FROM rejections \
             WHERE id < $1 AND ($3::text IS NULL OR source = $3) ORDER BY id DESC LIMIT $2",
            &[
                &q.before_id.unwrap_or(i64::MAX),
                &(q.limit as i64),
                &q.source.as_deref(),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| Rejection {
                id: r.get(0),
                at: rfc3339(r.get(1)),
                source: r.get(2),
                remote_addr: r.get(3),
                reason: r.get(4),
                size: r.get::<_, i64>(5).max(0) as u64,
            })
            .collect())
    }

    /// Every node's rows summed.
    fn source_counters(&self) -> StoreResult<Vec<(String, SourceCounters)>> {
        let rows = self.query(
            "SELECT source, name, sum(value)::bigint FROM source_counters \
             GROUP BY source, name ORDER BY source",
            &[],
        )?;
        let mut out: Vec<(String, SourceCounters)> = Vec::new();
        for r in &rows {
            let source: String = r.get(0);
            if out.last().is_none_or(|(s, _)| *s != source) {
                out.push((source, SourceCounters::default()));
            }
            if let Some((_, counters)) = out.last_mut() {
                counters.set(r.get::<_, &str>(1), r.get::<_, i64>(2).max(0) as u64);
            }
        }
        Ok(out)
    }

    fn actions(&self, message_id: i64) -> StoreResult<Vec<OperatorAction>> {
        let rows = self.query(
            "SELECT at, action, actor, affected FROM operator_actions \
             WHERE message_id = $1 ORDER BY id LIMIT 1000",
            &[&message_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| OperatorAction {
                at: rfc3339(r.get(0)),
                action: r.get(1),
                actor: r.get(2),
                affected: r.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    /// A message received in the last `FRESH_MS` and never tried is left out: the node that
    /// received it has just handed it to its own workers, and every node's feeder taking it
    /// too would only cost claims that lose.
    fn due_jobs(&self, after_id: i64, now_ms: i64, limit: u32) -> StoreResult<Vec<QueuedJob>> {
        let fresh_since = now_ms - FRESH_MS;
        let rows = self.query(
            "SELECT m.id, m.path, m.attempts, m.size FROM messages m \
             WHERE m.state = 'queued' AND m.id > $1 AND m.next_attempt_at <= $2 \
             AND (m.received_at < $4 OR m.attempts > 0 OR m.next_attempt_at > 0) \
             ORDER BY m.id LIMIT $3",
            &[&after_id, &now_ms, &(limit as i64), &fresh_since],
        )?;
        Ok(rows
            .iter()
            .map(|r| QueuedJob {
                id: r.get(0),
                path: r.get(1),
                attempts: r.get::<_, i32>(2).max(0) as u32,
                size: r.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    fn next_due_at(&self, after_ms: i64) -> StoreResult<Option<i64>> {
        let rows = self.query(
            "SELECT min(next_attempt_at) FROM messages \
             WHERE state = 'queued' AND next_attempt_at > $1",
            &[&after_ms],
        )?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }

    fn oldest_queued_at(&self) -> StoreResult<Option<i64>> {
        let rows = self.query(
            "SELECT received_at FROM messages WHERE state = 'queued' ORDER BY id LIMIT 1",
            &[],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn payload(&self, id: i64) -> StoreResult<Payload> {
        let rows = self.query(
            "SELECT b.payload FROM messages m LEFT JOIN bodies b ON b.message_id = m.id \
             WHERE m.id = $1",
            &[&id],
        )?;
        Ok(Payload::from_row(rows.first().map(|r| r.get(0))))
    }

    /// On the database's clock, as leases are set (`now_ms`, this node's, is not used).
    fn rows(
        &self,
        sql: &'static str,
        params: &[crate::store::sql::Value],
    ) -> StoreResult<Vec<crate::store::sql::Row>> {
        let text = sql.replace('?', "$");
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.query(&text, &params)?.iter().map(cells).collect()
    }

    fn expired_leases(&self, _now_ms: i64) -> StoreResult<u64> {
        let rows = self.query(
            &format!(
                "SELECT count(*) FROM messages WHERE state = 'processing' \
                 AND (lease_until IS NULL OR lease_until < {DB_NOW_MS})"
            ),
            &[],
        )?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    fn orders(&self, q: &OrderQuery) -> StoreResult<Vec<StoredOrder>> {
        let before = q.before_id.unwrap_or(i64::MAX);
        let limit = q.limit as i64;
        let source = q.source.as_deref();
        let rows = match &q.q {
            Some(text) => {
                let like = format!(
                    "%{}%",
                    text.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                self.query(
                    &format!(
                        "SELECT {ORDER_COLUMNS} FROM orders WHERE id < $1 AND (order_number LIKE $2 \
                         OR email LIKE $2 OR product LIKE $2) AND ($4::text IS NULL OR source = $4) \
                         ORDER BY id DESC LIMIT $3"
                    ),
                    &[&before, &like, &limit, &source],
                )?
            }
            None => self.query(
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE id < $1 \
                     AND ($3::text IS NULL OR source = $3) ORDER BY id DESC LIMIT $2"
                ),
                &[&before, &limit, &source],
            )?,
        };
        rows.iter().map(stored_order).collect()
    }

    fn order(&self, order_number: &str) -> StoreResult<Option<StoredOrder>> {
        let rows = self.query(
            &format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE order_number = $1 ORDER BY id LIMIT 1"
            ),
            &[&order_number],
        )?;
        rows.first().map(stored_order).transpose()
    }

    fn raw_messages(&self, f: &RawFilter, page: PageAfter) -> StoreResult<Vec<RawMessage>> {
        let rows = self.query(
            "SELECT m.id, m.path, m.state, b.payload FROM messages m \
             JOIN bodies b ON b.message_id = m.id \
             WHERE m.id > $1 AND m.received_at >= $2 \
             AND (m.state = $3 OR ($3::text IS NULL AND m.state IN ('processed', 'dead'))) \
             ORDER BY m.id LIMIT $4",
            &[
                &page.after_id,
                &f.since_ms.unwrap_or(i64::MIN),
                &f.status.map(MessageState::as_str),
                &i64::from(page.limit),
            ],
        )?;
        rows.iter()
            .map(|r| cells(r).map(|c| rows::raw_message(&c)))
            .collect()
    }

    fn raw_count(&self, f: &RawFilter) -> StoreResult<u64> {
        let rows = self.query(
            "SELECT count(*) FROM messages m WHERE m.received_at >= $1 \
             AND (m.state = $2 OR ($2::text IS NULL AND m.state IN ('processed', 'dead')))",
            &[
                &f.since_ms.unwrap_or(i64::MIN),
                &f.status.map(MessageState::as_str),
            ],
        )?;
        Ok(rows
            .first()
            .map(|r| r.get::<_, i64>(0).max(0) as u64)
            .unwrap_or(0))
    }

    fn nodes(&self) -> StoreResult<Vec<NodeStatus>> {
        let rows = self.query(
            &format!(
                "SELECT id, started_at, last_seen FROM nodes \
                 WHERE last_seen > {DB_NOW_MS} - $1 ORDER BY id"
            ),
            &[&NODE_ALIVE_MS],
        )?;
        Ok(rows
            .iter()
            .map(|r| NodeStatus {
                id: r.get(0),
                started_at: rfc3339(r.get(1)),
                last_seen: rfc3339(r.get(2)),
            })
            .collect())
    }

    /// The database's size (`pg_database_size`, asked at most every few seconds; unknown
    /// while the server does not answer). The WAL is the server's: none is reported.
    fn storage_health(&self) -> StorageHealth {
        let now = now_ms();
        if now - self.size_at.load(Relaxed) >= SIZE_EVERY_MS {
            self.size_at.store(now, Relaxed);
            let size = self
                .query("SELECT pg_database_size(current_database())", &[])
                .ok()
                .and_then(|rows| rows.first().map(|r| r.get::<_, i64>(0).max(0) as u64));
            self.size.store(size.unwrap_or(UNKNOWN_SIZE), Relaxed);
        }
        let size = self.size.load(Relaxed);
        StorageHealth {
            size_bytes: (size != UNKNOWN_SIZE).then_some(size),
            wal_bytes: None,
            disk: None,
            oldest_queued_at_ms: self.oldest_queued_at().ok().flatten(),
        }
    }
}
