//! `hookvault migrate --from sqlite:PATH --to postgres://...`: copies a SQLite database into
//! PostgreSQL, table by table in batches of [`BATCH`] rows (one transaction each), with a
//! progress line and a count per table at the end. Ids are kept, so links between messages,
//! orders, operator actions, deliveries and their attempts stay right, and the PostgreSQL
//! sequences are moved past them. Every insert is `ON CONFLICT DO NOTHING` on the primary key,
//! so running it again (after an interruption, or to be sure) copies nothing twice.
//!
//! Run it with `serve` stopped on the SQLite file. A message the SQLite file left `processing`
//! (a crash) is copied as `queued`, and a delivery left `sending` as `pending`, as the next
//! SQLite start would have done; the targets' leases (the SQLite node's) are not copied, their
//! deaths are.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use postgres::types::ToSql;
use rusqlite::{Connection, OpenFlags};

use super::postgres::{self as pg, schema};
use super::sqlite;
use crate::store::error::StoreError;

/// Rows per transaction.
pub const BATCH: i64 = 1000;
/// The counter rows copied totals are kept under (PostgreSQL keeps one set per node).
pub const MIGRATED_NODE: &str = "migrated";

/// What one table's copy found.
#[derive(Debug, Clone, PartialEq)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows in the SQLite file.
    pub source: u64,
    /// Rows inserted by this run (0 on a second run).
    pub copied: u64,
    /// Rows in PostgreSQL with the source's ids, after the copy.
    pub target: u64,
}

impl TableCount {
    pub fn verified(&self) -> bool {
        self.source == self.target
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Other(format!("SQLite: {e}"))
}

/// Copies `sqlite_path` into the database at `url`; `progress` gets a line per batch.
pub fn migrate(
    sqlite_path: &Path,
    url: &str,
    progress: &mut dyn Write,
) -> Result<Vec<TableCount>, StoreError> {
    if !sqlite_path.exists() {
        return Err(StoreError::Io(format!(
            "no SQLite database at {}",
            sqlite_path.display()
        )));
    }
    let src =
        Connection::open_with_flags(sqlite_path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    let version: i64 = src
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if version != sqlite::SCHEMA_VERSION {
        return Err(StoreError::Other(format!(
            "{} has schema version {version}; this hookvault migrates version {} (open it with \
             `hookvault serve` first to bring it up to date)",
            sqlite_path.display(),
            sqlite::SCHEMA_VERSION
        )));
    }
    let config = pg::config(url, "migrate")?;
    let mut dst = pg::connect(&config)?;
    schema::migrate(&mut dst)?;
    refuse_foreign_rows(&src, &mut dst)?;

    let mut counts = Vec::new();
    for table in &TABLES {
        counts.push(copy_table(&src, &mut dst, table, progress)?);
    }
    counts.push(copy_counters(&src, &mut dst)?);
    counts.push(copy_source_counters(&src, &mut dst)?);
    for (table, column) in [
        ("messages", "id"),
        ("orders", "id"),
        ("operator_actions", "id"),
        ("deliveries", "id"),
        ("delivery_attempts", "id"),
    ] {
        dst.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                 GREATEST((SELECT max({column}) FROM {table}), 1))"
            ),
            &[],
        )
        .map_err(pg::pg_err)?;
    }
    Ok(counts)
}

/// The target must be empty, or hold what an earlier run copied from this file: a message id
/// the file has for a different message means another database's rows are there, and copying
/// would silently skip the file's own.
fn refuse_foreign_rows(src: &Connection, dst: &mut postgres::Client) -> Result<(), StoreError> {
    let mut stmt = src
        .prepare("SELECT id, received_at, path FROM messages ORDER BY id DESC LIMIT 1")
        .map_err(sql)?;
    let newest: Option<(i64, i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql)?
        .next()
        .transpose()
        .map_err(sql)?;
    let Some((id, received_at, path)) = newest else {
        return Ok(());
    };
    let found = dst
        .query_opt(
            "SELECT received_at, path FROM messages WHERE id = $1",
            &[&id],
        )
        .map_err(pg::pg_err)?;
    if let Some(row) = found {
        let (at, p): (i64, String) = (row.get(0), row.get(1));
        if at != received_at || p != path {
            return Err(StoreError::Other(format!(
                "the PostgreSQL database already holds a different message {id}; migrate into \
                 an empty database (or the one an earlier run of this migration filled)"
            )));
        }
    }
    Ok(())
}

/// One table: how to read it from SQLite and write it to PostgreSQL, column for column.
struct Table {
    name: &'static str,
    key: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// SQLite expression per column when it differs from the column itself.
    select: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    /// INTEGER in SQLite, `integer` (32 bits) in PostgreSQL.
    Int32,
    OptInt,
    Text,
    OptText,
    Blob,
    OptBlob,
}

const TABLES: [Table; 8] = [
    Table {
        name: "messages",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("received_at", Kind::Int),
            ("path", Kind::Text),
            ("remote_addr", Kind::OptText),
            ("size", Kind::Int),
            ("idem_key", Kind::OptText),
            ("state", Kind::Text),
            ("attempts", Kind::Int32),
            ("next_attempt_at", Kind::Int),
            ("last_error", Kind::OptText),
            ("finished_at", Kind::OptInt),
            ("note", Kind::OptText),
            ("source", Kind::Text),
        ],
        // A crash left these `processing`; with no lease on them they are queued again.
        select: Some(
            "id, received_at, path, remote_addr, size, idem_key, \
             CASE state WHEN 'processing' THEN 'queued' ELSE state END, attempts, \
             next_attempt_at, last_error, finished_at, note, source",
        ),
    },
    Table {
        name: "bodies",
        key: "message_id",
        columns: &[
            ("message_id", Kind::Int),
            ("headers", Kind::Text),
            ("payload", Kind::Blob),
        ],
        select: None,
    },
    Table {
        name: "orders",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("message_id", Kind::Int),
            ("source_path", Kind::Text),
            ("order_number", Kind::Text),
            ("product", Kind::OptText),
            ("amount_cents", Kind::OptInt),
            ("currency", Kind::OptText),
            ("email", Kind::OptText),
            ("size", Kind::OptText),
            ("site", Kind::OptText),
            ("quantity", Kind::Int),
            ("profile", Kind::OptText),
            ("title", Kind::OptText),
            ("fields", Kind::Text),
            ("created_at", Kind::Int),
            ("updated_at", Kind::OptInt),
            ("source", Kind::Text),
        ],
        select: None,
    },
    Table {
        name: "rejections",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("at", Kind::Int),
            ("source", Kind::Text),
            ("remote_addr", Kind::OptText),
            ("reason", Kind::Text),
            ("size", Kind::Int),
        ],
        select: None,
    },
    Table {
        name: "operator_actions",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("message_id", Kind::OptInt),
            ("at", Kind::Int),
            ("action", Kind::Text),
            ("actor", Kind::Text),
            ("affected", Kind::Int),
        ],
        select: None,
    },
    Table {
        name: "deliveries",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("message_id", Kind::OptInt),
            ("target", Kind::Text),
            ("label", Kind::Text),
            ("kind", Kind::Text),
            ("content_type", Kind::OptText),
            ("headers", Kind::Text),
            ("body", Kind::OptBlob),
            ("state", Kind::Text),
            ("attempts", Kind::Int32),
            ("next_attempt_at", Kind::Int),
            ("lease_owner", Kind::OptText),
            ("created_at", Kind::Int),
            ("finished_at", Kind::OptInt),
            ("last_status", Kind::OptInt),
            ("last_error", Kind::OptText),
        ],
        // A request in flight when the SQLite node stopped is owed again, by nobody.
        select: Some(
            "id, message_id, target, label, kind, content_type, headers, body, \
             CASE state WHEN 'sending' THEN 'pending' ELSE state END, attempts, \
             next_attempt_at, NULL, created_at, finished_at, last_status, last_error",
        ),
    },
    Table {
        name: "delivery_attempts",
        key: "id",
        columns: &[
            ("id", Kind::Int),
            ("delivery_id", Kind::Int),
            ("at", Kind::Int),
            ("status", Kind::OptInt),
            ("latency_ms", Kind::Int),
            ("error", Kind::OptText),
        ],
        select: None,
    },
    Table {
        name: "relay_targets",
        key: "target",
        columns: &[
            ("target", Kind::Text),
            ("lease_owner", Kind::OptText),
            ("lease_until", Kind::OptInt),
            ("dead_reason", Kind::OptText),
            ("dead_at", Kind::OptInt),
        ],
        // The SQLite node's leases end with it; a dead target stays dead.
        select: Some("target, NULL, NULL, dead_reason, dead_at"),
    },
];

/// A table's key: an id, or a text (a relay target's URL).
#[derive(Debug, Clone)]
enum Key {
    Int(i64),
    Text(String),
}

impl rusqlite::types::FromSql for Key {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Key> {
        match v {
            rusqlite::types::ValueRef::Integer(i) => Ok(Key::Int(i)),
            _ => String::column_result(v).map(Key::Text),
        }
    }
}

impl rusqlite::ToSql for Key {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Key::Int(i) => rusqlite::ToSql::to_sql(i),
            Key::Text(s) => rusqlite::ToSql::to_sql(s),
        }
    }
}

/// A value read from SQLite, ready to bind in PostgreSQL.
enum Value {
    Int(i64),
    Int32(i32),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Blob(Vec<u8>),
    OptBlob(Option<Vec<u8>>),
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int(v) => v,
            Value::Int32(v) => v,
            Value::OptInt(v) => v,
            Value::Text(v) => v,
            Value::OptText(v) => v,
            Value::Blob(v) => v,
            Value::OptBlob(v) => v,
        }
    }
}

fn read_row(r: &rusqlite::Row, columns: &[(&str, Kind)]) -> rusqlite::Result<Vec<Value>> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Kind::Int => Value::Int(r.get(i)?),
                Kind::Int32 => Value::Int32(r.get::<_, i64>(i)?.clamp(0, i32::MAX as i64) as i32),
                Kind::OptInt => Value::OptInt(r.get(i)?),
                Kind::Text => Value::Text(r.get(i)?),
                Kind::OptText => Value::OptText(r.get(i)?),
                Kind::Blob => Value::Blob(r.get(i)?),
                Kind::OptBlob => Value::OptBlob(r.get(i)?),
            })
        })
        .collect()
}

fn copy_table(
    src: &Connection,
    dst: &mut postgres::Client,
    t: &Table,
    progress: &mut dyn Write,
) -> Result<TableCount, StoreError> {
    let names: Vec<&str> = t.columns.iter().map(|(n, _)| *n).collect();
    let list = names.join(", ");
    let select = t.select.unwrap_or(&list);
    let text_key = matches!(t.columns[0].1, Kind::Text);
    let (total, min, max): (i64, Option<Key>, Option<Key>) = src
        .query_row(
            &format!(
                "SELECT count(*), min({0}), max({0}) FROM {1}",
                t.key, t.name
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql)?;
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = dst
        .prepare(&format!(
            "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE VALUES ({}) ON CONFLICT ({}) DO NOTHING",
            t.name,
            placeholders.join(", "),
            t.key
        ))
        .map_err(pg::pg_err)?;
    let mut read = src
        .prepare(&format!(
            "SELECT {select} FROM {} WHERE {} > ?1 ORDER BY {} LIMIT ?2",
            t.name, t.key, t.key
        ))
        .map_err(sql)?;
    let started = Instant::now();
    // Every key is above the first cursor: any id, and any text (targets are never empty).
    let mut cursor = if text_key {
        Key::Text(String::new())
    } else {
        Key::Int(i64::MIN)
    };
    let (mut seen, mut copied) = (0u64, 0u64);
    loop {
        let rows: Vec<Vec<Value>> = read
            .query_map(rusqlite::params![cursor, BATCH], |r| read_row(r, t.columns))
            .map_err(sql)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql)?;
        let Some(last) = rows.last() else {
            break;
        };
        match &last[0] {
            Value::Int(id) => cursor = Key::Int(*id),
            Value::Text(key) => cursor = Key::Text(key.clone()),
            _ => {}
        }
        let mut tx = dst.transaction().map_err(pg::pg_err)?;
        for row in &rows {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(Value::as_sql).collect();
            copied += tx.execute(&insert, &params).map_err(pg::pg_err)?;
        }
        tx.commit().map_err(pg::pg_err)?;
        seen += rows.len() as u64;
        let _ = writeln!(
            progress,
            "{}: {seen}/{total} read, {copied} copied ({:.1}s)",
            t.name,
            started.elapsed().as_secs_f64()
        );
    }
    // Text keys compare byte for byte, as SQLite orders them (the "C" collation).
    let between = if text_key {
        "COLLATE \"C\" BETWEEN $1 AND $2"
    } else {
        "BETWEEN $1 AND $2"
    };
    let mut count_between = |min: &(dyn ToSql + Sync), max: &(dyn ToSql + Sync)| {
        dst.query_one(
            &format!("SELECT count(*) FROM {} WHERE {} {between}", t.name, t.key),
            &[min, max],
        )
        .map_err(pg::pg_err)
        .map(|r| r.get::<_, i64>(0) as u64)
    };
    let target = match (&min, &max) {
        (Some(Key::Int(min)), Some(Key::Int(max))) => count_between(min, max)?,
        (Some(Key::Text(min)), Some(Key::Text(max))) => count_between(min, max)?,
        _ => 0,
    };
    Ok(TableCount {
        table: t.name,
        source: total as u64,
        copied,
        target,
    })
}

/// The durable totals, and the gauges counted from the file (SQLite counts those at start),
/// as the counter rows of a node named [`MIGRATED_NODE`]; a second run writes the same values.
fn copy_counters(src: &Connection, dst: &mut postgres::Client) -> Result<TableCount, StoreError> {
    let mut rows: Vec<(String, i64)> = src
        .prepare("SELECT name, value FROM counters ORDER BY name")
        .map_err(sql)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    let source = rows.len() as u64;
    let gauge = |sql_text: &str| -> Result<i64, StoreError> {
        src.query_row(sql_text, [], |r| r.get(0)).map_err(sql)
    };
    rows.push((
        "queued".into(),
        gauge("SELECT count(*) FROM messages WHERE state IN ('queued', 'processing')")?,
    ));
    rows.push((
        "dead_now".into(),
        gauge("SELECT count(*) FROM messages WHERE state = 'dead'")?,
    ));
    rows.push((
        "deliveries_dead".into(),
        gauge("SELECT count(*) FROM deliveries WHERE state = 'dead'")?,
    ));
    let mut tx = dst.transaction().map_err(pg::pg_err)?;
    let mut copied = 0;
    for (name, value) in &rows {
        copied += tx
            .execute(
                "INSERT INTO counters (node, name, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (node, name) DO UPDATE SET value = excluded.value \
                 WHERE counters.value <> excluded.value",
                &[&MIGRATED_NODE, name, value],
            )
            .map_err(pg::pg_err)?;
    }
    tx.commit().map_err(pg::pg_err)?;
    let names: Vec<&str> = rows[..source as usize]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let target = dst
        .query_one(
            "SELECT count(*) FROM counters WHERE node = $1 AND name = ANY($2)",
            &[&MIGRATED_NODE, &names],
        )
        .map_err(pg::pg_err)?
        .get::<_, i64>(0) as u64;
    Ok(TableCount {
        table: "counters",
        source,
        copied: copied.min(source),
        target,
    })
}

/// The per-source totals, as rows of the node named [`MIGRATED_NODE`] (like the counters).
fn copy_source_counters(
    src: &Connection,
    dst: &mut postgres::Client,
) -> Result<TableCount, StoreError> {
    let rows: Vec<(String, String, i64)> = src
        .prepare(
            "SELECT source, name, SUM(value) FROM source_counters \
             GROUP BY source, name ORDER BY source, name",
        )
        .map_err(sql)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    let mut tx = dst.transaction().map_err(pg::pg_err)?;
    let mut copied = 0;
    for (source, name, value) in &rows {
        copied += tx
            .execute(
                "INSERT INTO source_counters (node, source, name, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (node, source, name) DO UPDATE SET value = excluded.value \
                 WHERE source_counters.value <> excluded.value",
                &[&MIGRATED_NODE, source, name, value],
            )
            .map_err(pg::pg_err)?;
    }
    tx.commit().map_err(pg::pg_err)?;
    let target = dst
        .query_one(
            "SELECT count(*) FROM source_counters WHERE node = $1",
            &[&MIGRATED_NODE],
        )
        .map_err(pg::pg_err)?
        .get::<_, i64>(0) as u64;
    let source = rows.len() as u64;
    Ok(TableCount {
        table: "source_counters",
        source,
        copied: copied.min(source),
        target,
    })
}
