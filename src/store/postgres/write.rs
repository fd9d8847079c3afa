//! This node's write connection and the PostgreSQL side of the transaction interface. Only
//! the writer thread holds it: one transaction per batch (group commit), answered only after
//! `COMMIT`. Other nodes write the same tables through their own connections, so the rows a
//! transaction changes are locked first (skipping those another node is changing right now),
//! and an attempt's outcome lands only where this node holds the lease ([`RULES`]). What the
//! ops mean is `store/state_machine.rs`.

use std::collections::HashMap;
use std::error::Error;
use std::time::{Duration, Instant};

use postgres::types::{private::BytesMut, to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Statement, Transaction};

use super::{cells, pg_err, PostgresOptions, DB_NOW_MS, EVENTS_CHANNEL};
use crate::base::time::now_ms;
use crate::store::error::{StoreError, StoreResult};
use crate::store::sql::{Announce, Row, Rules, SqlBackend, SqlTx, Value, Writers};
use crate::store::sql_store::SqlStore;

/// The write side on PostgreSQL: the state machine over this node's connection.
pub type PostgresWriter = SqlStore<PostgresBackend>;

/// Several nodes share the tables: a claim skips a row another node is changing right now
/// (its change decides), and one node sweeps at a time under an advisory lock (the key is
/// `0x686f_6f6b_7661_0002`, beside `schema::MIGRATION_LOCK`).
const RULES: Rules = Rules {
    writers: Writers::SharedWithLeases,
    claim: "UPDATE messages m SET state = 'processing', attempts = ?2, lease_owner = ?3, \
            lease_until = ?4 FROM (SELECT id FROM messages WHERE id = ?1 AND state = 'queued' \
            AND attempts = ?2 - 1 FOR UPDATE SKIP LOCKED) c WHERE m.id = c.id",
    purge_candidates: "SELECT id FROM messages WHERE state = 'processed' AND finished_at < ?1 \
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                       AND d.state IN ('pending', 'sending', 'dead')) \
                       ORDER BY id LIMIT ?2 FOR UPDATE SKIP LOCKED",
    own_delivery_candidates: "SELECT id FROM deliveries WHERE message_id IS NULL \
                              AND state IN ('delivered', 'discarded') AND finished_at < ?1 \
                              ORDER BY finished_at LIMIT ?2 FOR UPDATE SKIP LOCKED",
    sweep_lock: Some(
        "SELECT CASE WHEN pg_try_advisory_xact_lock(7525356009697640450) THEN 1 ELSE 0 END",
    ),
};

/// How often the node's heartbeat row is refreshed (the writer calls `maintain` when it is due,
/// busy or idle).
const HEARTBEAT: Duration = Duration::from_secs(1);

pub struct PostgresBackend {
    client: Client,
    /// To connect again after the server restarted or the connection broke.
    config: postgres::Config,
    cache: Cache,
    node: String,
    started_at: i64,
    last_heartbeat: Option<Instant>,
    /// The last statement failed for want of a working connection (the client may not have
    /// noticed it is closed yet): connect again before the next.
    broken: bool,
}

impl PostgresBackend {
    pub(super) fn new(client: Client, config: postgres::Config, options: &PostgresOptions) -> Self {
        PostgresBackend {
            client,
            config,
            cache: Cache::default(),
            node: options.node.clone(),
            started_at: now_ms(),
            last_heartbeat: None,
            broken: false,
        }
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
        if let Err(StoreError::Io(_) | StoreError::Unavailable(_)) = &result {
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

    fn transaction_once<R>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let PostgresBackend {
            client,
            cache,
            node,
            ..
        } = self;
        let mut tx = client.transaction().map_err(pg_err)?;
        let mut pg = PgTx {
            tx: &mut tx,
            cache,
            node,
            db_now: None,
            notes: Vec::new(),
        };
        let result = work(&mut pg)?;
        if !pg.notes.is_empty() {
            // Sent in the same transaction: delivered only if it commits.
            let notes = std::mem::take(&mut pg.notes);
            pg.tx
                .execute(
                    "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n",
                    &[&EVENTS_CHANNEL, &notes],
                )
                .map_err(pg_err)?;
        }
        tx.commit().map_err(pg_err)?;
        Ok(result)
    }
}

impl SqlBackend for PostgresBackend {
    fn transaction<R>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> StoreResult<R>,
    ) -> StoreResult<R> {
        self.connected()?;
        let result = self.transaction_once(work);
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
    /// durable; there is no file to copy back).
    fn close(&mut self) -> StoreResult<()> {
        self.connected()?;
        self.client
            .execute("DELETE FROM nodes WHERE id = $1", &[&self.node])
            .map_err(pg_err)?;
        Ok(())
    }
}

/// Statements prepared once per connection (each saves a parse round trip per use), by their
/// shared text and whether they return the new row's id.
#[derive(Default)]
struct Cache(HashMap<(&'static str, bool), Statement>);

struct PgTx<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    cache: &'a mut Cache,
    node: &'a str,
    /// The database's clock, read once per transaction when a lease needs it.
    db_now: Option<i64>,
    /// `LISTEN/NOTIFY` payloads, sent with the commit.
    notes: Vec<String>,
}

impl PgTx<'_, '_> {
    /// The shared text with `$N` for `?N`; `returning_id` appends `RETURNING id`.
    fn statement(&mut self, sql: &'static str, returning_id: bool) -> StoreResult<Statement> {
        if let Some(s) = self.cache.0.get(&(sql, returning_id)) {
            return Ok(s.clone());
        }
        let mut text = sql.replace('?', "$");
        if returning_id {
            text.push_str(" RETURNING id");
        }
        let s = self.tx.prepare(&text).map_err(pg_err)?;
        self.cache.0.insert((sql, returning_id), s.clone());
        Ok(s)
    }

    fn rows(
        &mut self,
        sql: &'static str,
        returning_id: bool,
        params: &[Value],
    ) -> StoreResult<Vec<postgres::Row>> {
        let s = self.statement(sql, returning_id)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.tx.query(&s, &params).map_err(pg_err)
    }
}

impl SqlTx for PgTx<'_, '_> {
    fn rules(&self) -> &Rules {
        &RULES
    }

    fn node(&self) -> &str {
        self.node
    }

    /// Leases are stamped and compared on the database's clock, whatever the nodes' say.
    fn lease_clock(&mut self, _batch_now_ms: i64) -> StoreResult<i64> {
        if let Some(now) = self.db_now {
            return Ok(now);
        }
        let now: i64 = self
            .tx
            .query_one(&format!("SELECT {DB_NOW_MS}"), &[])
            .map_err(pg_err)?
            .get(0);
        self.db_now = Some(now);
        Ok(now)
    }

    fn execute(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64> {
        let s = self.statement(sql, false)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.tx.execute(&s, &params).map_err(pg_err)
    }

    fn insert(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<i64>> {
        Ok(self.rows(sql, true, params)?.first().map(|r| r.get(0)))
    }

    fn query(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Row>> {
        self.rows(sql, false, params)?.iter().map(cells).collect()
    }

    fn query_row(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, params)?.pop())
    }

    /// This node's counter rows, in one statement for all of them.
    fn add_counters(&mut self, rows: &[(&'static str, i64)]) -> StoreResult<()> {
        let (names, values): (Vec<&str>, Vec<i64>) = rows.iter().copied().unzip();
        self.tx
            .execute(
                "INSERT INTO counters (node, name, value) \
                 SELECT $1, n, v FROM unnest($2::text[], $3::bigint[]) AS t(n, v) \
                 ON CONFLICT (node, name) DO UPDATE SET value = counters.value + excluded.value",
                &[&self.node, &names, &values],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn raise_counter(&mut self, name: &'static str, value: i64) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO counters (node, name, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (node, name) DO UPDATE \
                 SET value = greatest(counters.value, excluded.value)",
                &[&self.node, &name, &value],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn announce(&mut self, what: Announce, id: i64) {
        self.notes
            .push(format!("{}\t{}\t{id}", self.node, what.as_str()));
    }
}

/// A shared statement's parameter as the column it meets wants it (an `INTEGER` column takes
/// a 4-byte integer, a `BIGINT` an 8-byte one).
impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
            || <i32 as ToSql>::accepts(ty)
            || <i16 as ToSql>::accepts(ty)
            || <&str as ToSql>::accepts(ty)
            || <&[u8] as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}
