//! Leases: a `processing` message carries its node and an expiry. One that nobody holds is
//! queued again within the lease and a tick, at start or while the service runs; one a live
//! worker holds is never taken from it, however long its attempt runs; stuck work shows in
//! stats, `/metrics` and `/readyz` while it lasts. Also: a version 1 database migrates to
//! version 2 and serves.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault::testing::now_ms;
use hookvault::testing::store::Faults;
use hookvault::testing::Effect;
use hookvault::testing::{Job, JsonCheckProcessor, ProcessError, Processor};
use rusqlite::{params, Connection};

use crate::harness::{Hookvault, Http, InProcess};

/// Creates the database in `dir` (current schema) by starting and stopping the service.
fn create_db(dir: &Path) {
    Hookvault::new()
        .database(&dir.join("hookvault.db"))
        .processor(Arc::new(JsonCheckProcessor))
        .start()
        .stop();
}

/// Puts a message on the stopped database `dir` as a crashed node would leave it:
/// `processing`, one attempt made, leased to `owner` until `lease_until` (unix ms).
fn leave_processing(dir: &Path, owner: &str, lease_until: i64) -> i64 {
    let c = Connection::open(dir.join("hookvault.db")).unwrap();
    c.execute(
        "INSERT INTO messages (received_at, path, size, state, attempts, lease_owner, lease_until) \
         VALUES (?1, '/api/v2/webhooks/orders', 2, 'processing', 1, ?2, ?3)",
        params![now_ms(), owner, lease_until],
    )
    .unwrap();
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO bodies (message_id, headers, payload) VALUES (?1, '{}', X'7B7D')",
        [id],
    )
    .unwrap();
    c.execute(
        "INSERT INTO counters (name, value) VALUES ('received', 1) \
         ON CONFLICT (name) DO UPDATE SET value = value + 1",
        [],
    )
    .unwrap();
    id
}

fn start(
    dir: &Path,
    lease_s: u64,
    processor: Arc<dyn Processor>,
    faults: Faults,
) -> (InProcess, Http) {
    let server = Hookvault::new()
        .database(&dir.join("hookvault.db"))
        .settings(|s| {
            s.queue.lease_s = lease_s;
            s.node.id = Some("node-a:1".into());
        })
        .processor(processor)
        .faults(&faults)
        .start();
    let http = server.http.clone();
    (server, http)
}

#[test]
fn a_lease_left_by_another_node_is_taken_over_when_it_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    create_db(dir.path());
    // One whose lease already ran out (recovered at start), one that runs out 2 s from now
    // (left to its owner at start, queued again by the lease keeper once it expires).
    let expired = leave_processing(dir.path(), "node-b:1", now_ms() - 1_000);
    let expiring = leave_processing(dir.path(), "node-b:1", now_ms() + 2_000);
    let started = Instant::now();
    let (mut service, http) = start(dir.path(), 1, Arc::new(JsonCheckProcessor), Faults::new());

    let first = http.wait_status(expired, "processed", Duration::from_secs(5));
    assert_eq!(first["attempts"], 2, "{first}");
    assert_eq!(
        http.status_of(expiring),
        "processing",
        "taken before its lease ran out"
    );
    let second = http.wait_status(expiring, "processed", Duration::from_secs(2 + 5));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_900),
        "taken over after {took:?}"
    );
    assert_eq!(second["attempts"], 2, "{second}");
    let stats = http.stats();
    assert_eq!(stats["total_leases_expired"], 1, "{stats}");
    assert_eq!(stats["stale_leases"], 0, "{stats}");
    assert_eq!(stats["queue_size"], 0, "{stats}");
    let metrics = http.get("/metrics").text;
    assert!(
        metrics.contains("hookvault_leases_expired_total 1\n"),
        "{metrics}"
    );
    service.stop();
}

/// Sleeps `hang` on its first attempt of every message, then succeeds; counts attempts.
struct Slow {
    hang: Duration,
    attempts: AtomicU32,
}

impl Processor for Slow {
    fn process(&self, _job: &Job) -> Result<Effect, ProcessError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.hang);
        Ok(Effect::Nothing)
    }
}

/// A live worker renews its lease: an attempt running five times the lease is not taken
/// from it (one attempt, nothing expired), and shows as a long attempt while it runs.
#[test]
fn a_live_attempt_longer_than_the_lease_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Arc::new(Slow {
        hang: Duration::from_secs(5),
        attempts: AtomicU32::new(0),
    });
    let (mut service, http) = start(dir.path(), 1, slow.clone(), Faults::new());
    let id = http.ingest("{}").json["id"].as_i64().unwrap();
    // Past twice the lease (polled: a loaded machine may start the attempt late), and still
    // inside the 5 s attempt.
    let deadline = Instant::now() + Duration::from_millis(4_500);
    let stats = loop {
        let stats = http.stats();
        if stats["oldest_processing_age_s"].as_u64().unwrap() >= 2 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        stats["oldest_processing_age_s"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(stats["status"], "degraded", "{stats}");
    assert!(
        stats["status_reasons"]
            .to_string()
            .contains("longer than queue.lease_s"),
        "{stats}"
    );
    assert_eq!(
        http.get("/readyz").status,
        200,
        "a slow attempt is not stuck work"
    );
    assert_eq!(http.status_of(id), "processing");

    let entry = http.wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 1, "{entry}");
    assert_eq!(slow.attempts.load(Ordering::SeqCst), 1);
    let stats = http.stats();
    assert_eq!(stats["total_leases_expired"], 0, "{stats}");
    assert_eq!(stats["oldest_processing_age_s"], 0, "{stats}");
    service.stop();
}

/// The lease of message `id` in the database (unix ms), while it has one.
fn lease_until(dir: &Path, id: i64) -> Option<i64> {
    let c = Connection::open(dir.join("hookvault.db")).unwrap();
    c.query_row(
        "SELECT lease_until FROM messages WHERE id = ?1 AND state = 'processing'",
        [id],
        |r| r.get(0),
    )
    .ok()
    .flatten()
}

/// With nothing in hand the keeper sleeps instead of ticking; a message handed over wakes it,
/// so a lease taken after a quiet spell is renewed while its attempt runs, like any other.
#[test]
fn a_lease_taken_after_a_quiet_spell_is_renewed_while_its_attempt_runs() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Arc::new(Slow {
        hang: Duration::from_secs(4),
        attempts: AtomicU32::new(0),
    });
    let (mut service, http) = start(dir.path(), 1, slow.clone(), Faults::new());
    // Three ticks of a third of the 1 s lease with nothing in hand: the keeper is asleep.
    std::thread::sleep(Duration::from_secs(1));
    let id = http.ingest("{}").json["id"].as_i64().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let claimed = loop {
        if let Some(lease) = lease_until(dir.path(), id) {
            break lease;
        }
        assert!(Instant::now() < until, "never claimed");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Within the 4 s attempt (polled: the renewal comes a tick after the hand-over).
    let until = Instant::now() + Duration::from_millis(3_500);
    loop {
        match lease_until(dir.path(), id) {
            Some(lease) if lease > claimed => break,
            Some(_) => {}
            None => panic!("message {id} left processing before its lease was renewed"),
        }
        assert!(Instant::now() < until, "the lease was never renewed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let entry = http.wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 1, "{entry}");
    assert_eq!(http.stats()["total_leases_expired"], 0);
    service.stop();
}

/// An expired lease the keeper cannot put back (the disk refuses every write) is stuck
/// work: `/readyz` answers 503 naming it, stats and `/metrics` count it; once the disk
/// recovers it is queued again and processed.
#[test]
fn stuck_work_shows_in_readiness_stats_and_metrics_while_it_lasts() {
    let dir = tempfile::tempdir().unwrap();
    create_db(dir.path());
    let id = leave_processing(dir.path(), "node-b:1", now_ms() + 1_000);
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), 1, Arc::new(JsonCheckProcessor), faults.clone());
    faults.fail_all(true);

    let until = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let ready = http.get("/readyz");
        if ready.text.contains("expired lease") || Instant::now() > until {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(
        ready
            .text
            .contains("1 processing messages have an expired lease"),
        "{}",
        ready.text
    );
    let stats = http.stats();
    assert_eq!(stats["stale_leases"], 1, "{stats}");
    assert_eq!(stats["status"], "unhealthy", "{stats}");
    assert!(http
        .get("/metrics")
        .text
        .contains("hookvault_stale_leases 1\n"));

    faults.fail_all(false);
    http.wait_status(id, "processed", Duration::from_secs(5));
    let until = Instant::now() + Duration::from_secs(5);
    while http.get("/readyz").status != 200 {
        assert!(Instant::now() < until, "{}", http.get("/readyz").text);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http.stats()["stale_leases"], 0);
    service.stop();
}

/// The version 1 schema as hookvault wrote it before leases.
const V1: &str = r#"
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, path TEXT NOT NULL, remote_addr TEXT,
    size INTEGER NOT NULL, idem_key TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, finished_at INTEGER, note TEXT
);
CREATE UNIQUE INDEX messages_idem_key ON messages(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX messages_state ON messages(state, id);
CREATE TABLE bodies (message_id INTEGER PRIMARY KEY, headers TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL, source_path TEXT NOT NULL,
    order_number TEXT NOT NULL, product TEXT, amount_cents INTEGER, currency TEXT, email TEXT,
    size TEXT, site TEXT, quantity INTEGER NOT NULL, profile TEXT, title TEXT,
    fields TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER,
    UNIQUE (source_path, order_number)
);
CREATE TABLE operator_actions (
    id INTEGER PRIMARY KEY, message_id INTEGER, at INTEGER NOT NULL, action TEXT NOT NULL,
    actor TEXT NOT NULL, affected INTEGER NOT NULL
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
"#;

#[test]
fn a_version_1_database_migrates_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(V1).unwrap();
    // One processed, one queued and one left processing by a crash of the old version.
    for (state, finished) in [
        ("processed", Some(1_000)),
        ("queued", None),
        ("processing", None),
    ] {
        c.execute(
            "INSERT INTO messages (received_at, path, size, state, attempts, finished_at) \
             VALUES (1000, '/api/v2/webhooks/orders', 2, ?1, ?2, ?3)",
            params![state, i64::from(state != "queued"), finished],
        )
        .unwrap();
        c.execute(
            "INSERT INTO bodies (message_id, headers, payload) VALUES (?1, '{}', X'7B7D')",
            [c.last_insert_rowid()],
        )
        .unwrap();
    }
    c.execute_batch("INSERT INTO counters VALUES ('received', 3), ('processed', 1);")
        .unwrap();
    drop(c);

    let (mut service, http) = start(dir.path(), 30, Arc::new(JsonCheckProcessor), Faults::new());
    let version: i64 = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // Migrated through every step to the current version (3: sources, 4: deliveries, 5:
    // delivery retention).
    assert_eq!(version, 5);
    http.wait_status(2, "processed", Duration::from_secs(5));
    let crashed = http.wait_status(3, "processed", Duration::from_secs(5));
    assert_eq!(crashed["attempts"], 2, "{crashed}");
    let id = http.ingest("{}").json["id"].as_i64().unwrap();
    assert_eq!(id, 4);
    http.wait_status(id, "processed", Duration::from_secs(5));
    let stats = http.stats();
    assert_eq!(
        (&stats["total_received"], &stats["total_processed"]),
        (&serde_json::json!(4), &serde_json::json!(4)),
        "{stats}"
    );
    service.stop();
    // The new columns and the retention index are there.
    let c = Connection::open(&db).unwrap();
    let index: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_processed_finished'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    let leased: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE lease_owner IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leased, 0, "no lease outlives its attempt");
}
