//! Schema creation and migration. The version lives in `PRAGMA user_version`; a database from
//! a newer hookvault is refused rather than guessed at.

use rusqlite::Connection;

use crate::store::error::StoreError;

pub const SCHEMA_VERSION: i64 = 5;

/// Version 1, kept as it was so older databases migrate step by step.
pub(super) const V1: &str = r#"
-- One row per received webhook: small, so state changes rewrite small pages.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    received_at     INTEGER NOT NULL,          -- unix ms
    path            TEXT    NOT NULL,
    remote_addr     TEXT,
    size            INTEGER NOT NULL,
    idem_key        TEXT,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,  -- unix ms; 0 = now
    last_error      TEXT,
    finished_at     INTEGER,                   -- processed or dead, unix ms
    note            TEXT
);
CREATE UNIQUE INDEX messages_idem_key ON messages(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX messages_state ON messages(state, id);

-- Bodies are written once and never updated, so they live apart from the churning state.
CREATE TABLE bodies (
    message_id INTEGER PRIMARY KEY,
    headers    TEXT NOT NULL,                  -- JSON object
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
    fields       TEXT    NOT NULL,             -- JSON object of every labelled value
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER,
    UNIQUE (source_path, order_number)
);

-- Operator actions on messages (retry, discard), with who and when.
CREATE TABLE operator_actions (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER,                        -- NULL for "all dead letters"
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    affected   INTEGER NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 2: leases and an index for retention.
///
/// * A `processing` message names the node holding it (`lease_owner`, `node.id`) and until
///   when (`lease_until`, unix ms); no other state has either. A lease that runs out on a
///   message no live worker holds puts it back to `queued`.
/// * Retention finds processed messages by when they finished through a partial index, so a
///   sweep with nothing old enough reads one index entry instead of every processed row.
const V2: &str = r#"
ALTER TABLE messages ADD COLUMN lease_owner TEXT;
ALTER TABLE messages ADD COLUMN lease_until INTEGER;
CREATE INDEX messages_processed_finished ON messages(finished_at) WHERE state = 'processed';
"#;

/// Version 3: sources (`[[sources]]`, `src/settings/sources/`); its first statements are the
/// shared [`SOURCE_COLUMNS`](crate::store::statements::SOURCE_COLUMNS).
///
/// * Every message and order names its source; rows from before came through the one ingest
///   path there was, the `orders` source.
/// * Idempotency keys are unique per source: two senders may use the same delivery ids.
/// * Refused webhooks (token, signature) are kept in `rejections`, bounded by
///   `ingest.rejections_kept`; no body, no secret.
/// * Per-source totals live in `source_counters`, updated in the same transactions as the rows
///   they count; the `orders` source starts from the totals so far.
const V3: &str = r#"
CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,              -- unix ms
    source      TEXT    NOT NULL,
    remote_addr TEXT,
    reason      TEXT    NOT NULL,
    size        INTEGER NOT NULL
);

-- `node` is '' here (one node); the column keeps one statement for both backends.
CREATE TABLE source_counters (
    node   TEXT    NOT NULL,
    source TEXT    NOT NULL,
    name   TEXT    NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (node, source, name)
) WITHOUT ROWID;
INSERT INTO source_counters (node, source, name, value)
    SELECT '', 'orders', name, value FROM counters WHERE name IN ('received', 'processed', 'dead');
INSERT INTO source_counters (node, source, name, value)
    SELECT '', 'orders', 'failed', COALESCE(SUM(value), 0) FROM counters WHERE name IN ('retried', 'dead');
"#;

/// Version 4: deliveries (relays and forwards), one row per message and target, their
/// attempts, and the targets' leases and deaths. The same tables as PostgreSQL's version 3.
const V4: &str = r#"
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER,                   -- NULL: a delivery on its own (an alert)
    target          TEXT    NOT NULL,          -- the full URL, token included
    label           TEXT    NOT NULL,          -- the URL masked: what the API shows and filters
    kind            TEXT    NOT NULL,          -- discord | http
    content_type    TEXT,
    headers         TEXT    NOT NULL,          -- JSON object of extra request headers
    body            BLOB,                      -- NULL: the message's body
    state           TEXT    NOT NULL,          -- pending | sending | delivered | dead | discarded
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,                      -- while `sending`: the node sending it
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_status     INTEGER,
    last_error      TEXT
);
-- Its indexes: `statements::DELIVERY_INDEXES`, the same on both backends.

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, id);

-- One row per target: which node sends its queue now (a lease, so one node at a time keeps
-- its order), and whether it is dead (no request until an operator retries).
CREATE TABLE relay_targets (
    target      TEXT PRIMARY KEY,
    lease_owner TEXT,
    lease_until INTEGER,
    dead_reason TEXT,
    dead_at     INTEGER
);
"#;

/// Version 5: delivery retention (the shared
/// [`DELIVERY_RETENTION`](crate::store::statements::DELIVERY_RETENTION), run after this), and
/// the relay's `delivered` total as a durable counter (retention removes delivered rows, so
/// they can no longer be counted): it starts from the delivered rows, all still there.
const V5: &str = r#"
INSERT INTO counters (name, value)
    SELECT 'deliveries_delivered', count(*) FROM deliveries WHERE state = 'delivered';
"#;

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(super::sql_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction().map_err(super::sql_err)?;
    if version < 1 {
        tx.execute_batch(V1).map_err(super::sql_err)?;
    }
    if version < 2 {
        tx.execute_batch(V2).map_err(super::sql_err)?;
    }
    if version < 3 {
        tx.execute_batch(crate::store::statements::SOURCE_COLUMNS)
            .map_err(super::sql_err)?;
        tx.execute_batch(V3).map_err(super::sql_err)?;
    }
    if version < 4 {
        tx.execute_batch(V4).map_err(super::sql_err)?;
        tx.execute_batch(crate::store::statements::DELIVERY_INDEXES)
            .map_err(super::sql_err)?;
    }
    if version < 5 {
        tx.execute_batch(V5).map_err(super::sql_err)?;
        tx.execute_batch(crate::store::statements::DELIVERY_RETENTION)
            .map_err(super::sql_err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(super::sql_err)?;
    tx.commit().map_err(super::sql_err)?;
    log::info!("database schema migrated from version {version} to {SCHEMA_VERSION}");
    Ok(())
}
