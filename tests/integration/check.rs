//! `hookvault check [--repair]` through the real binary: a database the service wrote is
//! consistent (exit 0); a counter changed by hand is named and fails it (exit 1);
//! `--repair` rebuilds it from the tables and the next check passes. The same for the relay's
//! deliveries: their `delivered` total and their leases.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::harness::{command, order_body, FakeDiscord, Hookvault};

/// `hookvault check --db DB [extra]`: exit code and stdout.
fn check(db: &Path, extra: &[&str]) -> (i32, String) {
    let out = command()
        .arg("check")
        .arg("--db")
        .arg(db)
        .args(extra)
        .output()
        .expect("run hookvault check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// A database with processed orders, a dead letter that was retried and died again, and a
/// discarded one, written by the service itself.
fn written_by_the_service() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    let mut s = Hookvault::new()
        .database(&db)
        .settings(|c| c.queue.max_retries = 0)
        .start();
    for n in 0..5 {
        let id = s.http.ingest(&order_body(n)).json["id"].as_i64().unwrap();
        s.http.wait_status(id, "processed", Duration::from_secs(10));
    }
    let dead = s.http.ingest("{\"no\":\"order\"}").json["id"]
        .as_i64()
        .unwrap();
    s.http.wait_status(dead, "dead", Duration::from_secs(10));
    let retry = s.http.post(
        &format!("/api/v2/webhooks/queue/dead-letters/{dead}/retry"),
        b"",
    );
    assert_eq!(retry.status, 200, "{}", retry.text);
    s.http.wait_status(dead, "dead", Duration::from_secs(10));
    assert_eq!(
        s.http
            .delete(&format!("/api/v2/webhooks/queue/dead-letters/{dead}"))
            .status,
        200
    );
    s.stop();
    (dir, db)
}

#[test]
fn a_database_the_service_wrote_is_consistent() {
    let (_dir, db) = written_by_the_service();
    let (code, out) = check(&db, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok        counter received = messages + purged: 6"),
        "{out}"
    );
    assert!(
        out.contains("ok        counter requeued = messages retried by operators: 1"),
        "{out}"
    );
    assert!(out.contains("consistent:"), "{out}");
    assert!(!out.contains("MISMATCH"), "{out}");
}

#[test]
fn a_tampered_counter_is_named_and_repair_rebuilds_it() {
    let (_dir, db) = written_by_the_service();
    let c = Connection::open(&db).unwrap();
    c.execute(
        "UPDATE counters SET value = value + 7 WHERE name = 'received'",
        [],
    )
    .unwrap();
    c.execute(
        "UPDATE counters SET value = 0 WHERE name = 'orders_created'",
        [],
    )
    .unwrap();
    // A lease on a message that is not processing, as a bug or a hand edit would leave it.
    c.execute("UPDATE messages SET lease_owner = 'x:1' WHERE id = 1", [])
        .unwrap();
    drop(c);

    let (code, out) = check(&db, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "MISMATCH  counter received = messages + purged: expected 6, found 13 (received)"
        ),
        "{out}"
    );
    assert!(
        out.contains("expected 5, found 0 (orders_created)"),
        "{out}"
    );
    assert!(
        out.contains("MISMATCH  no lease on a message that is not processing"),
        "{out}"
    );
    assert!(out.contains("inconsistent: 3 of"), "{out}");

    let (code, out) = check(&db, &["--repair"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("repaired  counter received set from 13 to 6"),
        "{out}"
    );
    assert!(
        out.contains("repaired  counter orders_created set from 0 to 5"),
        "{out}"
    );
    let (code, out) = check(&db, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("repaired"), "{out}");
}

#[test]
fn a_missing_database_is_a_storage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(&dir.path().join("nope.db"), &[]);
    assert_eq!(code, 74, "{out}");
    assert!(out.contains("nope.db"), "{out}");
    assert!(
        !dir.path().join("nope.db").exists(),
        "check created a database"
    );
}

/// A queued message whose body row is missing (a damaged or hand-edited database) goes to the
/// dead letters once, with the error "body missing", instead of being handed out again every
/// second; `check` names the missing body.
#[test]
fn a_queued_message_without_its_body_becomes_one_dead_letter_and_check_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    Hookvault::new().database(&db).spawn().stop();
    let c = Connection::open(&db).unwrap();
    c.execute(
        "INSERT INTO messages (received_at, path, size, state) \
         VALUES (1, '/api/v2/webhooks/orders', 2, 'queued')",
        [],
    )
    .unwrap();
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO counters (name, value) VALUES ('received', 1) \
         ON CONFLICT (name) DO UPDATE SET value = value + 1",
        [],
    )
    .unwrap();
    drop(c);

    let mut s = Hookvault::new().database(&db).spawn();
    let m = s.http.wait_status(id, "dead", Duration::from_secs(10));
    assert_eq!(m["last_error"], "body missing", "{m}");
    assert_eq!(m["attempts"], 1, "{m}");
    // Well past the feeder's once-a-second look: it is not handed out (or logged) again.
    std::thread::sleep(Duration::from_millis(2500));
    let m = s.http.wait_status(id, "dead", Duration::from_secs(1));
    assert_eq!(m["attempts"], 1, "{m}");
    s.stop();
    let logged = s.stderr().matches("body is missing").count();
    assert_eq!(logged, 1, "{}", s.stderr());

    let (code, out) = check(&db, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MISMATCH  every message has its body"),
        "{out}"
    );
}

/// A database with three relayed deliveries and a dead one, written by the service against a
/// fake Discord: consistent; then its delivered total lowered, a delivered row made `sending`
/// with no target lease behind it, and an owner left on the dead one: each named, and
/// repaired.
#[test]
fn delivery_counters_and_leases_are_checked_and_repaired() {
    const TOKEN: &str = "CheckToKeN_abcdefghijklmnop-5678";
    let fake = FakeDiscord::start(None, 1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    let base = fake.base.clone();
    let mut s = Hookvault::new()
        .database(&db)
        .settings(move |c| {
            c.queue.max_retries = 0;
            c.relay.discord_base = base;
            c.relay.discord_webhook_ids = vec!["555".into()];
        })
        .start();
    // A 400 kills the first delivery at once; the others are delivered.
    fake.script("555", &[400]);
    for n in 0..4 {
        let body = format!(r#"{{"content":"check {n}"}}"#);
        let a = s
            .http
            .post(&format!("/api/webhooks/555/{TOKEN}"), body.as_bytes());
        assert_eq!(a.status, 204, "{}", a.text);
    }
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = s.http.get("/api/v2/deliveries?state=delivered");
        if a.json["items"].as_array().map_or(0, Vec::len) == 3 {
            break;
        }
        assert!(std::time::Instant::now() < until, "{}", a.text);
        std::thread::sleep(Duration::from_millis(20));
    }
    s.stop();

    let (code, out) = check(&db, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok        counter deliveries_delivered >= delivered deliveries: 3"),
        "{out}"
    );

    let c = Connection::open(&db).unwrap();
    c.execute(
        "UPDATE counters SET value = 0 WHERE name = 'deliveries_delivered'",
        [],
    )
    .unwrap();
    let sent: i64 = c
        .query_row(
            "SELECT MIN(id) FROM deliveries WHERE state = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "UPDATE deliveries SET state = 'sending', lease_owner = 'gone:1' WHERE id = ?1",
        [sent],
    )
    .unwrap();
    c.execute(
        "UPDATE deliveries SET lease_owner = 'gone:1' WHERE state = 'dead'",
        [],
    )
    .unwrap();
    drop(c);

    let (code, out) = check(&db, &[]);
    assert_eq!(code, 1, "{out}");
    for line in [
        "MISMATCH  counter deliveries_delivered >= delivered deliveries: \
         expected at least 2, found 0 (deliveries_delivered)",
        "MISMATCH  sending deliveries hold their target's lease: expected 0, found 1",
        "MISMATCH  no lease owner on a delivery that is not sending: expected 0, found 1",
        "inconsistent: 3 of",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }

    let (code, out) = check(&db, &["--repair"]);
    assert_eq!(code, 0, "{out}");
    for line in [
        "repaired  counter deliveries_delivered set from 0 to 2",
        "repaired  owed again 1 sending deliveries whose target lease was not theirs",
        "repaired  cleared the lease owner of 1 deliveries that are not sending",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    let c = Connection::open(&db).unwrap();
    let (state, owner): (String, Option<String>) = c
        .query_row(
            "SELECT state, lease_owner FROM deliveries WHERE id = ?1",
            [sent],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), owner), ("pending", None));
    drop(c);
    let (code, out) = check(&db, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("repaired"), "{out}");
}
