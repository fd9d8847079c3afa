//! Read-only connections for the HTTP API, the feeder and `reprocess`. In WAL mode they read
//! a consistent snapshot without ever blocking the writer.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::{cells, sql_err};
use crate::base::time::rfc3339;
use crate::store::error::{StoreError, StoreResult};
use crate::store::model::{
    DeadLetter, DeadLetterQuery, DurableCounters, LogQuery, MessageDetail, MessageState,
    MessageSummary, OperatorAction, OrderQuery, PageAfter, Payload, QueuedJob, RawFilter,
    RawMessage, Rejection, RejectionQuery, SourceCounters, StorageHealth, StoredOrder,
    PAYLOAD_PREVIEW_BYTES,
};
use crate::store::rows::{self, ORDER_COLUMNS, SUMMARY_COLUMNS};
use crate::store::seam::ReadStore;

pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    pub(super) fn new(path: PathBuf, conns: Vec<Connection>) -> Self {
        SqliteReader {
            path,
            idle: Mutex::new(conns),
        }
    }

    /// Runs `f` on a pooled connection; opens an extra one when all are busy rather than
    /// making a request wait for another.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql_err)?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(sql_err)?;
                c
            }
        };
        let result = f(&conn).map_err(sql_err);
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < 8 {
                v.push(conn);
            }
        }
        result
    }
}

fn summary(r: &Row) -> rusqlite::Result<MessageSummary> {
    cells(r).map(|c| rows::summary(&c))
}

fn stored_order(r: &Row) -> rusqlite::Result<StoredOrder> {
    cells(r).map(|c| rows::stored_order(&c))
}

impl ReadStore for SqliteReader {
    fn counters(&self) -> StoreResult<DurableCounters> {
        self.with(|c| {
            let mut out = DurableCounters::default();
            let mut stmt = c.prepare("SELECT name, value FROM counters")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (name, v) = row?;
                let v = v.max(0) as u64;
                match name.as_str() {
                    "received" => out.received = v,
                    "duplicates" => out.duplicates = v,
                    "processed" => out.processed = v,
                    "dead" => out.dead = v,
                    "retried" => out.retried = v,
                    "requeued" => out.requeued = v,
                    "discarded" => out.discarded = v,
                    "purged" => out.purged = v,
                    "leases_expired" => out.leases_expired = v,
                    "orders_created" => out.orders_created = v,
                    "processing_us_total" => out.processing_us_total += v,
                    // Whole milliseconds, as databases from before microseconds counted.
                    "processing_ms_total" => out.processing_us_total += v * 1000,
                    "queue_size_peak" => out.queue_size_peak = v,
                    "deliveries_delivered" => out.deliveries_delivered = v,
                    _ => {}
                }
            }
            // Gauges are counted once, at start-up, through the (state, id) index.
            let mut stmt = c.prepare("SELECT state, COUNT(*) FROM messages WHERE state IN ('queued', 'processing', 'dead') GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (state, n) = row?;
                match state.as_str() {
                    "queued" => out.queued = n as u64,
                    "processing" => out.processing = n as u64,
                    _ => out.dead_now = n as u64,
                }
            }
            out.deliveries_dead = c.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'dead'",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64;
            Ok(out)
        })
    }

    fn message(&self, id: i64) -> StoreResult<Option<MessageDetail>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, b.headers, b.payload, next_attempt_at FROM messages \
                 LEFT JOIN bodies b ON b.message_id = messages.id WHERE id = ?1"
            ))?
            .query_row([id], |r| {
                let next: i64 = r.get(13)?;
                Ok(MessageDetail {
                    summary: summary(r)?,
                    headers_json: r
                        .get::<_, Option<String>>(11)?
                        .unwrap_or_else(|| "{}".into()),
                    payload: r.get::<_, Option<Vec<u8>>>(12)?.unwrap_or_default(),
                    next_attempt_at: (next > 0).then(|| rfc3339(next)),
                })
            })
            .optional()
        })
    }

    fn logs(&self, q: &LogQuery) -> StoreResult<Vec<MessageSummary>> {
        let before = q.before_id.unwrap_or(i64::MAX);
        // `?4 IS NULL OR source = ?4`: one statement with or without the source filter (rows
        // are walked by id either way; no index per source, which every webhook would pay for).
        let source = q.source.as_deref();
        self.with(|c| match q.status {
            Some(state) => c
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM messages WHERE state = ?1 AND id < ?2 \
                     AND (?4 IS NULL OR source = ?4) ORDER BY id DESC LIMIT ?3"
                ))?
                .query_map(params![state.as_str(), before, q.limit, source], summary)?
                .collect(),
            None => c
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM messages WHERE id < ?1 \
                     AND (?3 IS NULL OR source = ?3) ORDER BY id DESC LIMIT ?2"
                ))?
                .query_map(params![before, q.limit, source], summary)?
                .collect(),
        })
    }

    fn dead_letters(&self, query: &DeadLetterQuery) -> StoreResult<Vec<DeadLetter>> {
        // The preview is cut in SQL: the whole body never reaches this process for a listing.
        self.with(|c| {
            c.prepare_cached(
                "SELECT m.id, m.received_at, m.attempts, m.last_error, m.finished_at, \
                 substr(b.payload, 1, ?3), m.size, m.source \
                 FROM messages m LEFT JOIN bodies b ON b.message_id = m.id \
                 WHERE m.state = 'dead' AND m.id > ?1 AND (?4 IS NULL OR m.source = ?4) \
                 ORDER BY m.id LIMIT ?2",
            )?
            .query_map(
                params![
                    query.after_id.unwrap_or(0),
                    query.limit,
                    PAYLOAD_PREVIEW_BYTES as i64,
                    query.source
                ],
                |r| {
                    Ok(DeadLetter {
                        id: r.get(0)?,
                        received_at: rfc3339(r.get(1)?),
                        source: r.get(7)?,
                        attempts: r.get(2)?,
                        last_error: r.get(3)?,
                        failed_at: r.get::<_, Option<i64>>(4)?.map(rfc3339),
                        payload_preview: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
                        payload_size: r.get::<_, i64>(6)?.max(0) as u64,
                    })
                },
            )?
            .collect()
        })
    }

    fn rejections(&self, q: &RejectionQuery) -> StoreResult<Vec<Rejection>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT id, at, source, remote_addr, reason, size FROM rejections \
                 WHERE id < ?1 AND (?3 IS NULL OR source = ?3) ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(
                params![
                    q.before_id.unwrap_or(i64::MAX),
                    q.limit,
                    q.source.as_deref()
                ],
                |r| {
                    Ok(Rejection {
                        id: r.get(0)?,
                        at: rfc3339(r.get(1)?),
                        source: r.get(2)?,
                        remote_addr: r.get(3)?,
                        reason: r.get(4)?,
                        size: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                },
            )?
            .collect()
        })
    }

    fn source_counters(&self) -> StoreResult<Vec<(String, SourceCounters)>> {
        self.with(|c| {
            let mut out: Vec<(String, SourceCounters)> = Vec::new();
            let mut stmt = c.prepare_cached(
                "SELECT source, name, SUM(value) FROM source_counters \
                 GROUP BY source, name ORDER BY source",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (source, name, value) = row?;
                if out.last().is_none_or(|(s, _)| *s != source) {
                    out.push((source, SourceCounters::default()));
                }
                if let Some((_, counters)) = out.last_mut() {
                    counters.set(&name, value.max(0) as u64);
                }
            }
            Ok(out)
        })
    }

    fn actions(&self, message_id: i64) -> StoreResult<Vec<OperatorAction>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT at, action, actor, affected FROM operator_actions \
                 WHERE message_id = ?1 ORDER BY id LIMIT 1000",
            )?
            .query_map([message_id], |r| {
                Ok(OperatorAction {
                    at: rfc3339(r.get(0)?),
                    action: r.get(1)?,
                    actor: r.get(2)?,
                    affected: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })?
            .collect()
        })
    }

    fn expired_leases(&self, now_ms: i64) -> StoreResult<u64> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE state = 'processing' \
                 AND (lease_until IS NULL OR lease_until < ?1)",
            )?
            .query_row([now_ms], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
    }

    fn rows(
        &self,
        sql: &'static str,
        params: &[crate::store::sql::Value],
    ) -> StoreResult<Vec<crate::store::sql::Row>> {
        self.with(|c| {
            c.prepare_cached(sql)?
                .query_map(rusqlite::params_from_iter(params), cells)?
                .collect()
        })
    }

    fn due_jobs(&self, after_id: i64, now_ms: i64, limit: u32) -> StoreResult<Vec<QueuedJob>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT m.id, m.path, m.attempts, m.size FROM messages m \
                 WHERE m.state = 'queued' AND m.id > ?1 AND m.next_attempt_at <= ?2 \
                 ORDER BY m.id LIMIT ?3",
            )?
            .query_map(params![after_id, now_ms, limit], |r| {
                Ok(QueuedJob {
                    id: r.get(0)?,
                    path: r.get(1)?,
                    attempts: r.get(2)?,
                    size: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })?
            .collect()
        })
    }

    fn next_due_at(&self, after_ms: i64) -> StoreResult<Option<i64>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT min(next_attempt_at) FROM messages \
                 WHERE state = 'queued' AND next_attempt_at > ?1",
            )?
            .query_row([after_ms], |r| r.get(0))
        })
    }

    fn oldest_queued_at(&self) -> StoreResult<Option<i64>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT received_at FROM messages WHERE state = 'queued' ORDER BY id LIMIT 1",
            )?;
            let mut rows = stmt.query([])?;
            Ok(match rows.next()? {
                Some(r) => Some(r.get(0)?),
                None => None,
            })
        })
    }

    fn payload(&self, id: i64) -> StoreResult<Payload> {
        let found: Option<Option<Vec<u8>>> = self.with(|c| {
            c.prepare_cached(
                "SELECT b.payload FROM messages m LEFT JOIN bodies b ON b.message_id = m.id \
                 WHERE m.id = ?1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()
        })?;
        Ok(Payload::from_row(found))
    }

    fn orders(&self, q: &OrderQuery) -> StoreResult<Vec<StoredOrder>> {
        let before = q.before_id.unwrap_or(i64::MAX);
        let source = q.source.as_deref();
        self.with(|c| match &q.q {
            Some(text) => {
                let like = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
                c.prepare_cached(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE id < ?1 AND (order_number LIKE ?2 ESCAPE '\\' \
                     OR email LIKE ?2 ESCAPE '\\' OR product LIKE ?2 ESCAPE '\\') \
                     AND (?4 IS NULL OR source = ?4) ORDER BY id DESC LIMIT ?3"
                ))?
                .query_map(params![before, like, q.limit, source], stored_order)?
                .collect()
            }
            None => c
                .prepare_cached(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE id < ?1 AND (?3 IS NULL OR source = ?3) \
                     ORDER BY id DESC LIMIT ?2"
                ))?
                .query_map(params![before, q.limit, source], stored_order)?
                .collect(),
        })
    }

    fn order(&self, order_number: &str) -> StoreResult<Option<StoredOrder>> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE order_number = ?1 ORDER BY id LIMIT 1"
            ))?
            .query_row([order_number], stored_order)
            .optional()
        })
    }

    fn raw_messages(&self, f: &RawFilter, page: PageAfter) -> StoreResult<Vec<RawMessage>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT m.id, m.path, m.state, b.payload FROM messages m JOIN bodies b ON b.message_id = m.id \
                 WHERE m.id > ?1 AND m.received_at >= ?2 AND (m.state = ?3 OR (?3 IS NULL AND m.state IN ('processed', 'dead'))) \
                 ORDER BY m.id LIMIT ?4",
            )?
            .query_map(
                params![page.after_id, f.since_ms.unwrap_or(i64::MIN), f.status.map(MessageState::as_str), page.limit],
                |r| cells(r).map(|c| rows::raw_message(&c)),
            )?
            .collect()
        })
    }

    fn raw_count(&self, f: &RawFilter) -> StoreResult<u64> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM messages m WHERE m.received_at >= ?1 \
                 AND (m.state = ?2 OR (?2 IS NULL AND m.state IN ('processed', 'dead')))",
            )?
            .query_row(
                params![
                    f.since_ms.unwrap_or(i64::MIN),
                    f.status.map(MessageState::as_str)
                ],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }

    /// The file's size, the WAL's (no WAL file: nothing waits to be copied back) and the room
    /// left on the file's file system.
    fn storage_health(&self) -> StorageHealth {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = match std::fs::metadata(PathBuf::from(wal)) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
            Err(_) => None,
        };
        StorageHealth {
            size_bytes: std::fs::metadata(&self.path).ok().map(|m| m.len()),
            wal_bytes: wal,
            disk: crate::base::disk::space_of(&self.path),
            oldest_queued_at_ms: self.oldest_queued_at().ok().flatten(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        sql_err(e)
    }
}
