//! The thin transaction interface each backend implements: it only speaks SQL. What a write op
//! means (which rows change, which counters move, when an op does not apply) is written once
//! above it, in `state_machine.rs`; a backend runs statements, hands back rows, and keeps what
//! truly differs between databases as data in its [`Rules`].

use std::time::Duration;

use crate::store::error::StoreResult;

use crate::store::model::CounterDelta;

/// A statement's parameter. Statements are written with `?1`, `?2`... placeholders (SQLite's
/// style; the PostgreSQL backend turns them into `$1`, `$2`... once, when it prepares them).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(v)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Value::Null, Value::Text)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

/// One column of a result row, whatever the backend's own type for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// A result row: its cells in the order the statement selects them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    pub fn int(&self, i: usize) -> i64 {
        self.opt_int(i).unwrap_or(0)
    }

    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Cell::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Cell::Text(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

/// What a committed change tells other nodes sharing the database (PostgreSQL sends it with
/// the commit; a backend serving one node has nobody to tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    Received,
    OrderCreated,
    Dead,
}

impl Announce {
    /// The word PostgreSQL's `NOTIFY` carries for it.
    #[cfg(feature = "postgres")]
    pub fn as_str(self) -> &'static str {
        match self {
            Announce::Received => "received",
            Announce::OrderCreated => "order",
            Announce::Dead => "dead",
        }
    }
}

/// Who else writes the tables: the one fact the state machine's guard depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// This node alone (SQLite). An attempt's outcome may also land on its message still
    /// `queued`: before its claim (which it then carries, so claims fold into outcomes) or
    /// after its lease ran out. Gauges are counted from the rows at start, not stored.
    OneNode,
    /// Several nodes share the tables (PostgreSQL). An outcome lands only on the message
    /// `processing` that attempt and leased to this node (another node may have taken a
    /// `queued` row meanwhile); gauges are stored as counter rows per node, since no node can
    /// count them from its own commits alone.
    SharedWithLeases,
}

impl Writers {
    pub fn outcome_on_queued(self) -> bool {
        self == Writers::OneNode
    }

    pub fn outcome_needs_lease_holder(self) -> bool {
        self == Writers::SharedWithLeases
    }

    pub fn stores_gauges(self) -> bool {
        self == Writers::SharedWithLeases
    }
}

/// Where the backends truly differ, as data. Everything else is one statement in
/// `statements.rs` (row locks are written there in standard SQL, `FOR UPDATE [SKIP LOCKED]`
/// at a statement's end, which a backend without other writers drops) and one meaning in
/// `state_machine.rs`.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub writers: Writers,
    /// `claim`: message `?1` to `processing` with `attempts = ?2`, leased to `?3` until `?4`,
    /// only when `queued` with `attempts = ?2 - 1` (and, shared, not being changed right now).
    pub claim: &'static str,
    /// Up to `?2` ids of `processed` messages finished before `?1`, each taken by one sweep;
    /// a message whose delivery is still owed, or dead (an operator may retry it), is kept:
    /// the delivery sends the message's body.
    pub purge_candidates: &'static str,
    /// Up to `?2` ids of deliveries without a message (alerts) delivered or discarded before
    /// `?1`, oldest first, each taken by one sweep (dead ones wait for an operator), through
    /// the `deliveries_own_finished` index.
    pub own_delivery_candidates: &'static str,
    /// A lock only one sweeper may hold at a time (a row `1` when taken); `None` where only
    /// one writer exists.
    pub sweep_lock: Option<&'static str>,
}

/// One transaction. Every method runs inside it; nothing is kept unless it commits.
pub trait SqlTx {
    fn rules(&self) -> &Rules;
    /// The node this transaction writes for (its leases, its counter rows).
    fn node(&self) -> &str;
    /// The clock leases are stamped and compared with: the batch's time on a database one
    /// node owns, the database's own clock where several nodes share it.
    fn lease_clock(&mut self, batch_now_ms: i64) -> StoreResult<i64>;
    /// Runs a statement; how many rows it changed.
    fn execute(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<u64>;
    /// Runs an `INSERT ... ON CONFLICT DO NOTHING` into a table with an `id` key: the new
    /// row's id, `None` when the conflict kept the row out.
    fn insert(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<i64>>;
    fn query(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Vec<Row>>;
    fn query_row(&mut self, sql: &'static str, params: &[Value]) -> StoreResult<Option<Row>>;
    /// Adds `rows` (counter name, amount) to this node's durable counters.
    fn add_counters(&mut self, rows: &[(&'static str, i64)]) -> StoreResult<()>;
    /// Raises the counter `name` to `value` unless it is higher already (a high-water mark).
    fn raise_counter(&mut self, name: &'static str, value: i64) -> StoreResult<()>;
    /// Tells other nodes about a change if it commits (nothing to do for one node).
    fn announce(&mut self, what: Announce, id: i64);
}

/// A backend: a write connection that runs transactions, and its housekeeping.
pub trait SqlBackend: Send {
    /// Runs `work` in one transaction and commits it when `work` succeeds; when `work` fails
    /// (or the commit does), nothing of it is kept.
    fn transaction<R>(
        &mut self,
        work: impl FnOnce(&mut dyn SqlTx) -> StoreResult<R>,
    ) -> StoreResult<R>;
    /// See [`WriteStore::maintain`](super::WriteStore::maintain).
    fn maintain(&mut self, idle_for: Duration) -> StoreResult<Option<Duration>>;
    /// See [`WriteStore::close`](super::WriteStore::close).
    fn close(&mut self) -> StoreResult<()>;
}

/// The counter rows a committed delta adds: the durable totals, and the gauges where they are
/// stored.
pub fn counter_rows(d: &CounterDelta, with_gauges: bool) -> Vec<(&'static str, i64)> {
    let gauges = [
        ("queued", d.queued),
        ("processing", d.processing),
        ("dead_now", d.dead_now),
        ("deliveries_dead", d.deliveries_dead),
    ];
    let gauges = if with_gauges { &gauges[..] } else { &[] };
    d.totals()
        .into_iter()
        .chain(gauges.iter().copied())
        .filter(|(_, v)| *v != 0)
        .collect()
}
