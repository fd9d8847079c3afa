//! The HTTP behaviour that must not depend on the storage backend, run against SQLite and
//! against PostgreSQL (each test on a database of its own; PostgreSQL tests skip with a reason
//! when no server is reachable, and fail under `CI=true`): intake and dedupe, processing into
//! orders, dead letters with retry and discard, the logs, and the stats totals.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookvault::testing::Effect;
use hookvault::testing::{Job, ProcessError, Processor};
use serde_json::Value;

use crate::harness::{order_body, Hookvault, InProcess};
#[cfg(feature = "postgres")]
use crate::harness::{pg_or_skip, PgDb};

const INGEST: &str = "/api/v2/webhooks/orders";
const WAIT: Duration = Duration::from_secs(20);

/// The storage a test runs on: a temp SQLite file, or a PostgreSQL database of its own.
enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres(PgDb),
}

impl Backend {
    /// A server on this backend (`database`: SQLite's file when starting again on one).
    fn server(&self, database: Option<&PathBuf>) -> Hookvault<'_> {
        let server = Hookvault::new();
        match self {
            Backend::Sqlite => match database {
                Some(path) => server.database(path),
                None => server,
            },
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => server.postgres(db, "test-node"),
        }
    }

    fn is_postgres(&self) -> bool {
        !matches!(self, Backend::Sqlite)
    }
}

fn intake_and_dedupe(backend: Backend) {
    let s = backend
        .server(None)
        .settings(|c| c.server.max_body_bytes = 4096)
        .start();
    let first = s.http.post_with(
        INGEST,
        order_body(1).as_bytes(),
        &[("Idempotency-Key", "k-1")],
    );
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["status"], "queued");
    let id = first.json["id"].as_i64().unwrap();
    let again = s
        .http
        .post_with(INGEST, order_body(1).as_bytes(), &[("webhook-id", "k-1")]);
    assert_eq!(again.status, 200);
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(again.json["id"], id);
    assert_eq!(s.http.get("/api/v2/webhooks/logs/999999").status, 404);
    let big = s.http.post(INGEST, &[b'x'; 5000]);
    assert_eq!(big.status, 413, "{}", big.text);
    let entry = s.http.wait_status(id, "processed", WAIT);
    assert_eq!(entry["payload"], order_body(1));
    let stats = s.http.wait_drained(WAIT);
    assert_eq!(stats["total_received"], 1, "{stats}");
    assert_eq!(stats["total_duplicates"], 1, "{stats}");
}

fn orders_from_many_posts(backend: Backend) {
    let s = backend.server(None).start();
    let ids: Vec<i64> = (0..60)
        .map(|n| {
            let a = s.http.ingest(&order_body(n));
            assert_eq!(a.status, 200, "{}", a.text);
            a.json["id"].as_i64().unwrap()
        })
        .collect();
    // The same order number again from the same path: one order, the message noted.
    let dup = s.http.ingest(&order_body(7)).json["id"].as_i64().unwrap();
    let stats = s.http.wait_drained(WAIT);
    for id in &ids {
        assert_eq!(s.http.status_of(*id), "processed");
    }
    let noted = s.http.wait_status(dup, "processed", WAIT);
    assert!(
        noted["note"].as_str().unwrap().contains("duplicate order"),
        "{noted}"
    );
    assert_eq!(stats["total_received"], 61, "{stats}");
    assert_eq!(stats["total_processed"], 61, "{stats}");
    assert_eq!(stats["total_orders"], 60, "{stats}");
    assert_eq!(stats["in_flight"], 0, "{stats}");
    let page = s.http.get("/api/v2/orders?limit=100").json;
    let numbers: HashSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_number"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(numbers.len(), 60);
    let one = s.http.get("/api/v2/orders/TEST-5");
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json["amount_cents"], 9999);
    assert_eq!(one.json["email"], "test5@example.com");
    assert_eq!(s.http.get("/api/v2/orders/NOPE").status, 404);
    if backend.is_postgres() {
        assert_eq!(stats["node"], "test-node", "{stats}");
        let stats = s.http.stats();
        assert!(stats["nodes"].is_array(), "{stats}");
    } else {
        assert!(stats.get("nodes").is_none(), "{stats}");
    }
}

/// Fails each message permanently on its first attempt and succeeds after that.
#[derive(Default)]
struct FailFirst {
    seen: Mutex<HashSet<i64>>,
}

impl Processor for FailFirst {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        if self.seen.lock().unwrap().insert(job.id) {
            Err(ProcessError::Permanent("first attempt fails".into()))
        } else {
            Ok(Effect::Nothing)
        }
    }
}

fn dead_letters_retry_and_discard(backend: Backend) {
    let s = backend
        .server(None)
        .processor(Arc::new(FailFirst::default()))
        .start();
    let http = &s.http;
    let ids: Vec<i64> = (0..4)
        .map(|n| http.ingest(&order_body(n)).json["id"].as_i64().unwrap())
        .collect();
    for id in &ids {
        http.wait_status(*id, "dead", WAIT);
    }
    let dead = http.get("/api/v2/webhooks/queue/dead-letters").json;
    assert_eq!(dead["count"], 4, "{dead}");
    assert_eq!(dead["items"][0]["last_error"], "first attempt fails");
    assert_eq!(http.stats()["dead_letter_queue_size"], 4);

    // One retried, one discarded, the rest retried together.
    let retry_one = |id: i64| {
        http.post(
            &format!("/api/v2/webhooks/queue/dead-letters/{id}/retry"),
            b"",
        )
    };
    let one = retry_one(ids[0]);
    assert_eq!(one.status, 200, "{}", one.text);
    http.wait_status(ids[0], "processed", WAIT);
    let not_dead = retry_one(ids[0]);
    assert_eq!(not_dead.status, 404);
    assert_eq!(not_dead.json["error"], "not_dead");
    let gone = http.delete(&format!("/api/v2/webhooks/queue/dead-letters/{}", ids[1]));
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(http.status_of(ids[1]), "discarded");
    let all = http.post("/api/v2/webhooks/queue/retry-failed", b"");
    assert_eq!(all.json["requeued"], 2, "{}", all.text);
    for id in &ids[2..] {
        http.wait_status(*id, "processed", WAIT);
    }
    let detail = http.get(&format!("/api/v2/webhooks/logs/{}", ids[1])).json;
    assert_eq!(detail["actions"][0]["action"], "discard", "{detail}");
    let stats = http.wait_drained(WAIT);
    // Failed: each message once, in dead letters now or discarded (the one discard).
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["total_processed"], 3, "{stats}");
    assert_eq!(stats["total_requeued"], 3, "{stats}");
    assert_eq!(stats["total_discarded"], 1, "{stats}");
    assert_eq!(stats["dead_letter_queue_size"], 0, "{stats}");
    let logs = http.get("/api/v2/webhooks/logs?status=discarded").json;
    assert_eq!(logs["items"].as_array().unwrap().len(), 1, "{logs}");
}

fn totals_survive_a_restart(backend: Backend) {
    let mut s: InProcess = backend.server(None).start();
    for n in 0..5 {
        assert_eq!(s.http.ingest(&order_body(n)).status, 200);
    }
    s.http.ingest("not json");
    s.http.wait_drained(WAIT);
    s.stop();
    let file = s.database().to_path_buf();
    let again = backend.server(Some(&file)).start();
    let stats = again.http.stats();
    assert_eq!(stats["total_received"], 6, "{stats}");
    assert_eq!(stats["total_processed"], 5, "{stats}");
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["dead_letter_queue_size"], 1, "{stats}");
    assert_eq!(stats["queue_size"], 0, "{stats}");
    let page: Value = again.http.get("/api/v2/webhooks/logs").json;
    assert_eq!(page["items"].as_array().unwrap().len(), 6);
}

/// PostgreSQL closing the node's connections (a server restart, a network cut) costs at most
/// the batch in hand: it is answered 503 and kept nowhere, and the node connects again.
#[cfg(feature = "postgres")]
#[test]
fn postgres_connections_lost_and_found_again() {
    let db = pg_or_skip!();
    let mut admin = db.client();
    let s = Hookvault::new().postgres(&db, "test-node").start();
    assert_eq!(s.http.ingest(&order_body(1)).status, 200);
    s.http.wait_drained(WAIT);
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap()
        .len();
    assert!(killed >= 3, "writer, readers and listener: {killed}");
    let mut answers = Vec::new();
    for n in 2..12 {
        let a = s.http.ingest(&order_body(n));
        assert!(a.status == 200 || a.status == 503, "{}", a.text);
        answers.push(a.status);
    }
    assert!(
        answers.iter().filter(|&&c| c == 503).count() <= 1,
        "{answers:?}"
    );
    assert_eq!(answers.last(), Some(&200), "{answers:?}");
    let stats = s.http.wait_drained(WAIT);
    let acked = answers.iter().filter(|&&c| c == 200).count() as u64 + 1;
    assert_eq!(stats["total_orders"].as_u64(), Some(acked), "{stats}");
    assert_eq!(stats["total_received"].as_u64(), Some(acked), "{stats}");
}

/// Sources on either backend: dedupe per source, the rejections log and its bound, and the
/// per-source totals (kept per node on PostgreSQL and summed).
fn sources_and_rejections(backend: Backend) {
    let s = backend
        .server(None)
        .settings(|c| {
            c.ingest.rejections_kept = 2;
            c.sources = vec![
                toml::from_str("name = \"orders\"").unwrap(),
                toml::from_str("name = \"a\"").unwrap(),
                toml::from_str("name = \"gh\"\nverify = \"github\"\nsecrets = [\"s\"]").unwrap(),
            ];
        })
        .start();
    let key = [("Idempotency-Key", "same")];
    let first = s.http.post_with("/api/v2/webhooks/in/a", b"{}", &key);
    let other = s.http.post_with(INGEST, order_body(3).as_bytes(), &key);
    let again = s.http.post_with("/api/v2/webhooks/in/a", b"{}", &key);
    assert_eq!(first.json["status"], "queued", "{}", first.text);
    assert_eq!(other.json["status"], "queued", "{}", other.text);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.json["status"], "duplicate");
    for _ in 0..3 {
        let forged = [("X-Hub-Signature-256", "sha256=00")];
        let a = s.http.post_with("/api/v2/webhooks/in/gh", b"{}", &forged);
        assert_eq!(a.status, 401);
    }
    let until = std::time::Instant::now() + WAIT;
    // The log is read once the figures say all three are committed (read before them, it
    // could predate the last commit).
    let log = loop {
        let stats = s.http.stats();
        if stats["sources"]["gh"]["rejected"] == 3 {
            break s.http.get("/api/v2/webhooks/rejections").json;
        }
        assert!(std::time::Instant::now() < until, "{stats}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log["count"], 2, "bounded: {log}");
    assert_eq!(log["items"][0]["reason"], "signature_invalid");
    let stats = s.http.wait_drained(WAIT);
    assert_eq!(stats["sources"]["a"]["received"], 1, "{stats}");
    assert_eq!(stats["sources"]["a"]["processed"], 1, "{stats}");
    assert_eq!(stats["sources"]["orders"]["processed"], 1, "{stats}");
    let orders = s.http.get("/api/v2/orders?source=orders").json;
    assert_eq!(orders["items"][0]["source"], "orders", "{orders}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Backend::Sqlite) } )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $( #[test] fn $name() {
                let db = super::pg_or_skip!();
                super::$name(super::Backend::Postgres(db))
            } )*
        }
    };
}

on_both_backends!(
    intake_and_dedupe,
    orders_from_many_posts,
    dead_letters_retry_and_discard,
    totals_survive_a_restart,
    sources_and_rejections,
);
