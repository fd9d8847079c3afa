//! Retention at scale, a measurement rather than a check: one sweep over 1,000,000 processed
//! messages, first with nothing old enough, then with everything old, as retention's own ops
//! through the store. Run with
//! `cargo test --release --test integration retention_scale -- --ignored --nocapture`; the figures are in
//! docs/performance.md. `HOOKVAULT_SCALE_ROWS` changes the row count.

use std::time::{Duration, Instant};

use hookvault::testing::store::{self, OpOutcome, WriteOp, WriteStore};
use hookvault::StorageSettings;
use rusqlite::Connection;

const BATCH: u32 = hookvault::testing::store::RETENTION_BATCH;

fn rows() -> i64 {
    std::env::var("HOOKVAULT_SCALE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// `n` processed messages finished at t = 1,000,000 + i ms, with 64-byte bodies, in one
/// transaction of plain SQL (the service would take minutes to build them).
fn build(path: &std::path::Path, n: i64) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < {n})
         INSERT INTO messages (id, received_at, path, size, state, attempts, finished_at)
         SELECT x, 1000000 + x, '/api/v2/webhooks/orders', 64, 'processed', 1, 1000000 + x FROM i;
         INSERT INTO bodies (message_id, headers, payload)
         SELECT id, '{{}}', zeroblob(64) FROM messages;
         INSERT INTO counters (name, value) VALUES ('received', {n}), ('processed', {n});
         COMMIT;"
    ))
    .unwrap();
}

fn purge(w: &mut Box<dyn WriteStore>, before_ms: i64) -> (u64, Duration) {
    let op = WriteOp::PurgeProcessed {
        finished_before_ms: before_ms,
        limit: BATCH,
    };
    let started = Instant::now();
    let (outcomes, _) = w.commit_batch(&[op], 0).unwrap();
    let took = started.elapsed();
    match outcomes[0] {
        OpOutcome::Purged { messages, .. } => (messages, took),
        ref other => panic!("{other:?}"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One "nothing old enough" sweep, 21 times: the median op time, and the median time of a
/// commit that does nothing (the fsync every commit pays) to compare with.
fn nothing_old(w: &mut Box<dyn WriteStore>) -> (Duration, Duration) {
    let sweeps = (0..21).map(|_| purge(w, 0)).map(|(n, t)| {
        assert_eq!(n, 0);
        t
    });
    let sweep = median(sweeps.collect());
    let empty = median(
        (0..21)
            .map(|_| {
                let started = Instant::now();
                w.commit_batch(&[], 0).unwrap();
                started.elapsed()
            })
            .collect(),
    );
    (sweep, empty)
}

#[test]
#[ignore = "a measurement at 1,000,000 rows; run by hand"]
fn retention_sweep_at_a_million_processed_rows() {
    let n = rows();
    let dir = tempfile::tempdir().unwrap();
    let settings = StorageSettings {
        path: dir.path().join("scale.db"),
        ..Default::default()
    };
    drop(store::open(&settings).unwrap());
    let started = Instant::now();
    build(&settings.path, n);
    eprintln!("built {n} processed rows in {:.1?}", started.elapsed());

    let (mut w, _r) = store::open(&settings).unwrap();
    let (sweep, empty) = nothing_old(&mut w);
    eprintln!(
        "FIGURE nothing old, with the index: sweep op {sweep:?} (an empty commit: {empty:?})"
    );

    // What version 1 ran in the writer's transaction: the (state, id) index, every
    // processed row read to test its finish time.
    let c = Connection::open(&settings.path).unwrap();
    let v1 = median(
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let n: i64 = c
                    .query_row(
                        "SELECT COUNT(*) FROM (SELECT id FROM messages WHERE state = 'processed' \
                         AND finished_at < 0 ORDER BY id LIMIT 500)",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(n, 0);
                started.elapsed()
            })
            .collect(),
    );
    eprintln!("FIGURE nothing old, version 1's query: {v1:?}");
    drop(c);

    // Everything old: batches of BATCH until one comes back short, as the sweeper does
    // (without its pause between batches).
    let (mut removed, mut batches, mut slowest) = (0, 0, Duration::ZERO);
    let started = Instant::now();
    loop {
        let (k, t) = purge(&mut w, i64::MAX);
        w.maintain(Duration::ZERO).unwrap();
        removed += k;
        batches += 1;
        slowest = slowest.max(t);
        if k < u64::from(BATCH) {
            break;
        }
    }
    let total = started.elapsed();
    assert_eq!(removed, n as u64);
    eprintln!(
        "FIGURE everything old: {removed} removed in {batches} ops, {total:.1?} in all, \
         {:?} per op on average, slowest op {slowest:?}",
        total / batches
    );
}
