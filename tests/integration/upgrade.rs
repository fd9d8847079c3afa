//! Upgrades in place: a database written by an earlier hookvault is migrated by the current
//! binary when `serve` starts, and everything in it is served and processed afterwards.
//!
//! The earlier database is made here with the schema exactly as that version shipped it
//! (`V1_SCHEMA` below is frozen: never edit it; when the schema moves on, add the next frozen
//! version beside it and a test that starts from it). The check that the result has the same
//! tables, columns and indexes as a database the current binary creates from nothing catches a
//! schema change made without a migration.
//!
//! The other direction, an older binary refusing a newer database with a clear message, is
//! `a_database_from_a_newer_version_is_refused_with_a_clear_message` in `crash.rs` beside this file.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::harness::{Binary, Hookvault};

/// The schema of `PRAGMA user_version = 1`, as hookvault 0.1.0 created it.
const V1_SCHEMA: &str = r#"
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    received_at     INTEGER NOT NULL,
    path            TEXT    NOT NULL,
    remote_addr     TEXT,
    size            INTEGER NOT NULL,
    idem_key        TEXT,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    finished_at     INTEGER,
    note            TEXT
);
CREATE UNIQUE INDEX messages_idem_key ON messages(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX messages_state ON messages(state, id);
CREATE TABLE bodies (
    message_id INTEGER PRIMARY KEY,
    headers    TEXT NOT NULL,
    payload    BLOB NOT NULL
);
CREATE TABLE orders (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL,
    source_path  TEXT    NOT NULL,
    order_number TEXT    NOT NULL,
    product      TEXT,
    amount_cents INTEGER,
    currency     TEXT,
    email        TEXT,
    size         TEXT,
    site         TEXT,
    quantity     INTEGER NOT NULL,
    profile      TEXT,
    title        TEXT,
    fields       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER,
    UNIQUE (source_path, order_number)
);
CREATE TABLE operator_actions (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    affected   INTEGER NOT NULL
);
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
"#;

const PATH: &str = "/api/v2/webhooks/orders";

fn order_payload(number: &str, product: &str) -> String {
    format!(
        r#"{{"embeds":[{{"description":"Product\n{product}\nPrice\n$12.50\nOrder Number\n{number}\nEmail\nold@example.com"}}]}}"#
    )
}

/// A v1 database as a running 0.1.0 left it: one message processed into an order, one dead
/// letter, one still queued (the new binary must process it), and the counters to match.
fn make_v1_database(path: &Path) {
    let db = Connection::open(path).unwrap();
    db.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    db.execute_batch(V1_SCHEMA).unwrap();
    let received_at = 1_764_000_000_000_i64; // 2025-11-24, unix ms
    let rows: [(i64, &str, String, Option<&str>); 3] = [
        (1, "processed", order_payload("OLD-1", "Old Product"), None),
        (
            2,
            "dead",
            "not json at all".to_string(),
            Some("invalid JSON: expected value at line 1 column 1"),
        ),
        (
            3,
            "queued",
            order_payload("OLD-3", "Queued Before Upgrade"),
            None,
        ),
    ];
    for (id, state, payload, error) in &rows {
        let finished = (*state != "queued").then_some(received_at + 5);
        db.execute(
            "INSERT INTO messages (id, received_at, path, remote_addr, size, idem_key, state, \
             attempts, last_error, finished_at) VALUES (?1, ?2, ?3, '127.0.0.1', ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                id,
                received_at + id,
                PATH,
                payload.len() as i64,
                format!("old-{id}"),
                state,
                i64::from(*state != "queued"),
                error,
                finished
            ],
        )
        .unwrap();
        db.execute(
            "INSERT INTO bodies (message_id, headers, payload) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                id,
                r#"{"content-type":"application/json"}"#,
                payload.as_bytes()
            ],
        )
        .unwrap();
    }
    db.execute(
        "INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, currency, \
         email, quantity, fields, created_at) VALUES (1, ?1, 'OLD-1', 'Old Product', 1250, 'USD', \
         'old@example.com', 1, '{}', ?2)",
        rusqlite::params![PATH, received_at + 5],
    )
    .unwrap();
    for (name, value) in [
        ("received", 3),
        ("processed", 1),
        ("dead", 1),
        ("orders_created", 1),
        ("queue_size_peak", 1),
    ] {
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)",
            rusqlite::params![name, value],
        )
        .unwrap();
    }
}

/// The tables, columns (sorted by name: a migration may append what a fresh schema places
/// elsewhere) and indexes of a database, as comparable text.
fn schema_shape(path: &Path) -> (i64, Vec<String>) {
    let db = Connection::open(path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut shape = Vec::new();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables {
        let mut cols: Vec<String> = db
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| {
                Ok(format!(
                    "{table}.{} {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        cols.sort();
        shape.extend(cols);
        let mut indexes: Vec<String> = db
            .prepare(&format!("PRAGMA index_list({table})"))
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .map(|(name, unique, partial)| {
                let cols: Vec<String> = db
                    .prepare(&format!("PRAGMA index_info('{name}')"))
                    .unwrap()
                    .query_map([], |r| r.get::<_, Option<String>>(2))
                    .unwrap()
                    .map(|c| c.unwrap().unwrap_or_default())
                    .collect();
                // Automatic indexes (UNIQUE constraints) are named by position; name them by
                // what they cover instead.
                let label = if name.starts_with("sqlite_autoindex") {
                    "auto".to_string()
                } else {
                    name
                };
                format!(
                    "{table} index {label} unique={unique} partial={partial} ({})",
                    cols.join(",")
                )
            })
            .collect();
        indexes.sort();
        shape.extend(indexes);
    }
    (version, shape)
}

#[test]
fn a_version_1_database_is_migrated_in_place_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    make_v1_database(&old);

    let mut serve = serve_on(&old);
    // What the old version stored is served as it was.
    let order = serve.http.get("/api/v2/orders/OLD-1");
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.json["product"], "Old Product", "{}", order.text);
    let dead = serve.http.get("/api/v2/webhooks/logs/2");
    assert_eq!(dead.status, 200, "{}", dead.text);
    assert_eq!(dead.json["status"], "dead", "{}", dead.text);
    assert_eq!(dead.json["payload"], "not json at all", "{}", dead.text);
    // What it left queued is processed by the new binary.
    let deadline = Instant::now() + Duration::from_secs(30);
    let order3 = loop {
        let answer = serve.http.get("/api/v2/orders/OLD-3");
        if answer.status == 200 {
            break answer.json;
        }
        assert!(
            Instant::now() < deadline,
            "the queued message was not processed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(order3["product"], "Queued Before Upgrade", "{order3}");
    // The durable counters carried over and moved on.
    let stats = serve.http.stats();
    assert_eq!(stats["total_received"], 3, "{stats}");
    assert_eq!(stats["total_processed"], 2, "{stats}");
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["dead_letter_queue_size"], 1, "{stats}");
    // Everything before sources came through the one ingest path: the `orders` source, whose
    // totals start from the old ones.
    let orders = &stats["sources"]["orders"];
    assert_eq!(orders["received"], 3, "{stats}");
    assert_eq!(orders["processed"], 2, "{stats}");
    assert_eq!(orders["dead"], 1, "{stats}");
    assert_eq!(dead.json["source"], "orders", "{}", dead.text);
    serve.stop();

    // The migrated database has exactly the shape a new one gets.
    let fresh = dir.path().join("fresh.db");
    serve_on(&fresh).stop();
    let (fresh_version, fresh_shape) = schema_shape(&fresh);
    let (old_version, old_shape) = schema_shape(&old);
    assert_eq!(old_version, fresh_version, "user_version after the upgrade");
    assert!(
        old_version >= 1,
        "a database the binary created has version {fresh_version}"
    );
    assert_eq!(
        old_shape, fresh_shape,
        "a migrated database differs from a new one: a schema change without a migration?"
    );
}

/// The real binary serving `db` (2 workers), once it answers `/readyz`.
fn serve_on(db: &Path) -> Binary {
    let serve = Hookvault::new()
        .database(db)
        .settings(|s| s.queue.workers = 2)
        .spawn();
    serve.http.wait_ready(Duration::from_secs(30));
    serve
}
