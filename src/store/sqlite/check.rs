//! `hookvault check` on SQLite. The rules come from `write.rs`, which moves every counter in
//! the same transaction as the rows it counts:
//!
//! * `received` = rows in `messages` + `purged` (an append adds a row and one `received`;
//!   only retention deletes rows, and counts them in `purged`);
//! * `processed` = `processed` rows + `purged` (nothing leaves `processed` but retention);
//! * `discarded` = `discarded` rows (a final state);
//! * `orders_created` = rows in `orders` (orders are never deleted);
//! * `requeued` = the messages operator retries moved (`operator_actions`, action `retry`);
//! * `dead` ≥ `dead` rows + `discarded` + `requeued` (every dead letter went dead once; a
//!   `reprocess` can also take one to `processed`, so this one is a lower bound);
//! * every message has its body; processed and dead rows have `finished_at` (retention finds
//!   processed rows by it);
//! * leases: a `processing` row has an owner and an expiry, no other row has either.
//!
//! Deliveries, from `state_machine/deliveries.rs`:
//!
//! * `deliveries_delivered` ≥ `delivered` rows: a durable total that retention does not
//!   lower when it deletes delivered rows, so the rows left give only its lower bound. The
//!   owed and dead figures are not stored on SQLite (they are counted from the rows at
//!   start), so there is no stored figure to hold against them;
//! * every delivery is in a known state; delivered, dead and discarded ones have
//!   `finished_at` (retention finds finished ones by it);
//! * leases: a `sending` delivery has an owner, and its target's lease (`relay_targets`) is
//!   held by that owner with an expiry; no other delivery has an owner. The expiry itself is
//!   not checked, as for messages: a node killed mid-request leaves expired leases that the
//!   next start takes over.
//!
//! The check reads inside one transaction, so a running service cannot move the figures
//! between two queries. `--repair` takes the write lock (`BEGIN IMMEDIATE`) and, in one
//! transaction, sets each counter an equality names to what the tables say, raises `dead` to
//! its lower bound (and `deliveries_delivered` to its), clears leases on rows that are not
//! `processing` (deliveries: not `sending`) and queues again `processing` rows without a
//! lease and `sending` deliveries whose target lease is not theirs (their attempt count is
//! kept). Missing bodies, unknown states and missing `finished_at` cannot be rebuilt; they
//! stay reported.

use std::path::Path;

use rusqlite::{Transaction, TransactionBehavior};

use super::sql_err;
use crate::store::consistency::{Check, ConsistencyReport};
use crate::store::error::{StoreError, StoreResult};

/// Checks the database at `path` (which must exist), repairing first when `repair`.
pub fn run(path: &Path, repair: bool) -> StoreResult<ConsistencyReport> {
    if !path.exists() {
        return Err(StoreError::Io(format!(
            "{}: no such database; point --db or storage.path at an existing one",
            path.display()
        )));
    }
    let (writer, _reader) = super::open(path, 1)?;
    let mut conn = writer.into_backend().into_connection();
    let mut repaired = Vec::new();
    if repair {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let before = checks(&tx).map_err(sql_err)?;
        repaired = fix(&tx, &before).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
    }
    let tx = conn.transaction().map_err(sql_err)?;
    let checks = checks(&tx).map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    Ok(ConsistencyReport { checks, repaired })
}

fn count(tx: &Transaction, sql: &str) -> rusqlite::Result<i64> {
    tx.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .map(Option::unwrap_or_default)
}

fn counter(tx: &Transaction, name: &str) -> rusqlite::Result<i64> {
    count(
        tx,
        &format!("SELECT (SELECT value FROM counters WHERE name = '{name}')"),
    )
}

fn eq(name: &str, subject: &str, expected: i64, found: i64) -> Check {
    Check {
        name: name.into(),
        subject: subject.into(),
        expected,
        found,
        at_least: false,
    }
}

fn checks(tx: &Transaction) -> rusqlite::Result<Vec<Check>> {
    let rows = count(tx, "SELECT COUNT(*) FROM messages")?;
    let in_state = |state: &str| {
        count(
            tx,
            &format!("SELECT COUNT(*) FROM messages WHERE state = '{state}'"),
        )
    };
    let purged = counter(tx, "purged")?;
    let discarded_rows = in_state("discarded")?;
    let requeued_by_operators = count(
        tx,
        "SELECT SUM(affected) FROM operator_actions WHERE action = 'retry'",
    )?;
    let mut out = vec![
        eq(
            "counter received = messages + purged",
            "received",
            rows + purged,
            counter(tx, "received")?,
        ),
        eq(
            "counter processed = processed messages + purged",
            "processed",
            in_state("processed")? + purged,
            counter(tx, "processed")?,
        ),
        eq(
            "counter discarded = discarded messages",
            "discarded",
            discarded_rows,
            counter(tx, "discarded")?,
        ),
        eq(
            "counter orders_created = orders",
            "orders_created",
            count(tx, "SELECT COUNT(*) FROM orders")?,
            counter(tx, "orders_created")?,
        ),
        eq(
            "counter requeued = messages retried by operators",
            "requeued",
            requeued_by_operators,
            counter(tx, "requeued")?,
        ),
        Check {
            name: "counter dead >= dead + discarded + requeued".into(),
            subject: "dead".into(),
            expected: in_state("dead")? + discarded_rows + requeued_by_operators,
            found: counter(tx, "dead")?,
            at_least: true,
        },
        eq(
            "every message has its body",
            "bodies",
            rows,
            count(
                tx,
                "SELECT COUNT(*) FROM messages m JOIN bodies b ON b.message_id = m.id",
            )?,
        ),
        eq(
            "no body without its message",
            "bodies",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM bodies WHERE message_id NOT IN (SELECT id FROM messages)",
            )?,
        ),
        eq(
            "every message is in a known state",
            "state",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM messages WHERE state NOT IN \
                 ('queued', 'processing', 'processed', 'dead', 'discarded')",
            )?,
        ),
        eq(
            "processed and dead messages have finished_at",
            "finished_at",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM messages WHERE state IN ('processed', 'dead') \
                 AND finished_at IS NULL",
            )?,
        ),
        eq(
            "processing messages have a lease owner and expiry",
            "lease",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM messages WHERE state = 'processing' \
                 AND (lease_owner IS NULL OR lease_until IS NULL)",
            )?,
        ),
        eq(
            "no lease on a message that is not processing",
            "lease",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM messages WHERE state != 'processing' \
                 AND (lease_owner IS NOT NULL OR lease_until IS NOT NULL)",
            )?,
        ),
    ];
    // Counters that are stored but that no table can confirm are not checked: duplicates,
    // retried, leases_expired, processing_ms_total, queue_size_peak.
    out.extend(delivery_checks(tx)?);
    Ok(out)
}

const DELIVERY_LEASE_MISSING: &str = "sending deliveries hold their target's lease";
const DELIVERY_LEASE_STRAY: &str = "no lease owner on a delivery that is not sending";
/// A `sending` delivery whose owner does not hold its target's lease (with an expiry).
const SENDING_WITHOUT_LEASE: &str = "state = 'sending' AND (lease_owner IS NULL OR NOT EXISTS \
     (SELECT 1 FROM relay_targets t WHERE t.target = deliveries.target \
      AND t.lease_owner = deliveries.lease_owner AND t.lease_until IS NOT NULL))";

fn delivery_checks(tx: &Transaction) -> rusqlite::Result<Vec<Check>> {
    Ok(vec![
        Check {
            name: "counter deliveries_delivered >= delivered deliveries".into(),
            subject: "deliveries_delivered".into(),
            expected: count(
                tx,
                "SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'",
            )?,
            found: counter(tx, "deliveries_delivered")?,
            at_least: true,
        },
        eq(
            "every delivery is in a known state",
            "delivery state",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM deliveries WHERE state NOT IN \
                 ('pending', 'sending', 'delivered', 'dead', 'discarded')",
            )?,
        ),
        eq(
            "delivered, dead and discarded deliveries have finished_at",
            "delivery finished_at",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM deliveries WHERE state IN \
                 ('delivered', 'dead', 'discarded') AND finished_at IS NULL",
            )?,
        ),
        eq(
            DELIVERY_LEASE_MISSING,
            "delivery lease",
            0,
            count(
                tx,
                &format!("SELECT COUNT(*) FROM deliveries WHERE {SENDING_WITHOUT_LEASE}"),
            )?,
        ),
        eq(
            DELIVERY_LEASE_STRAY,
            "delivery lease",
            0,
            count(
                tx,
                "SELECT COUNT(*) FROM deliveries WHERE state != 'sending' \
                 AND lease_owner IS NOT NULL",
            )?,
        ),
    ])
}

/// Sets what `before` found wrong from the tables; returns one line per change.
fn fix(tx: &Transaction, before: &[Check]) -> rusqlite::Result<Vec<String>> {
    let mut done = Vec::new();
    for c in before.iter().filter(|c| !c.ok()) {
        let counter = c.name.starts_with("counter ");
        if counter {
            tx.execute(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                rusqlite::params![c.subject, c.expected],
            )?;
            done.push(format!(
                "counter {} set from {} to {}",
                c.subject, c.found, c.expected
            ));
        } else if c.name == "no lease on a message that is not processing" {
            let n = tx.execute(
                "UPDATE messages SET lease_owner = NULL, lease_until = NULL \
                 WHERE state != 'processing' AND (lease_owner IS NOT NULL OR lease_until IS NOT NULL)",
                [],
            )?;
            done.push(format!(
                "cleared the lease of {n} messages that are not processing"
            ));
        } else if c.name == "processing messages have a lease owner and expiry" {
            let n = tx.execute(
                "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL \
                 WHERE state = 'processing' AND (lease_owner IS NULL OR lease_until IS NULL)",
                [],
            )?;
            done.push(format!(
                "queued again {n} processing messages that had no lease"
            ));
        } else if c.name == DELIVERY_LEASE_STRAY {
            let n = tx.execute(
                "UPDATE deliveries SET lease_owner = NULL \
                 WHERE state != 'sending' AND lease_owner IS NOT NULL",
                [],
            )?;
            done.push(format!(
                "cleared the lease owner of {n} deliveries that are not sending"
            ));
        } else if c.name == DELIVERY_LEASE_MISSING {
            // Owed again, as a target taken over from a stopped node is.
            let n = tx.execute(
                &format!(
                    "UPDATE deliveries SET state = 'pending', lease_owner = NULL \
                     WHERE {SENDING_WITHOUT_LEASE}"
                ),
                [],
            )?;
            done.push(format!(
                "owed again {n} sending deliveries whose target lease was not theirs"
            ));
        }
    }
    Ok(done)
}
