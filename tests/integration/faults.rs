//! "No 2xx, no promise" when commits fail, through the fault-injecting store: no root, no
//! tmpfs, the failures exactly where the test wants them. A refused webhook is answered 503
//! with Retry-After and nothing of it is kept; an acknowledged one is never lost.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use hookvault::store::Faults;

use crate::harness::{order_body, Answer, Hookvault, Http, InProcess};

/// The library's server on `dir`'s database, its commits switched by `faults`.
fn start(dir: &Path, faults: &Faults) -> (InProcess, Http) {
    let server = Hookvault::new()
        .database(&dir.join("hookvault.db"))
        .faults(faults)
        .start();
    let http = server.http.clone();
    (server, http)
}

fn assert_refused_for_storage(a: &Answer) {
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.json["error"], "storage_unavailable", "{}", a.text);
    assert!(a.header("Retry-After").is_some(), "no Retry-After: {a:?}");
    let message = a.json["message"].as_str().unwrap_or_default();
    assert!(message.contains("disk is full"), "{message}");
    assert!(message.contains("retry later"), "{message}");
}

#[test]
fn every_third_commit_failing_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), &faults);
    faults.fail_every(3);

    // 6 clients × 50 posts, each a distinct order.
    let clients: Vec<_> = (0..6u64)
        .map(|c| {
            let http = http.clone();
            thread::spawn(move || {
                (0..50u64)
                    .map(|i| http.ingest(&order_body(c * 1000 + i)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<Answer> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    faults.clear();

    let mut acked = Vec::new();
    for a in &answers {
        match a.status {
            200 => acked.push(a.json["id"].as_i64().expect("an id with the 200")),
            _ => assert_refused_for_storage(a),
        }
    }
    let refused = answers.len() - acked.len();
    assert!(faults.failed() > 0, "no commit failed");
    assert!(
        refused > 0,
        "every post was acknowledged despite failing commits"
    );
    assert!(
        acked.len() > 100,
        "only {} of 300 acknowledged",
        acked.len()
    );

    // Every acknowledged message is stored, and nothing refused was: the durable count of
    // received messages is exactly the number of 2xx answers.
    for id in &acked {
        let entry = http.get(&format!("/api/v2/webhooks/logs/{id}"));
        assert_eq!(
            entry.status, 200,
            "acknowledged message {id}: {}",
            entry.text
        );
    }
    // Outcomes that met a failed commit are retried once a second: let them land until the
    // queue is empty or stops moving.
    let (mut last, mut since) = (http.stats(), Instant::now());
    let stats = loop {
        thread::sleep(Duration::from_millis(100));
        let s = http.stats();
        if s["queue_size"] == 0 || since.elapsed() > Duration::from_millis(2500) {
            break s;
        }
        if s["queue_size"] != last["queue_size"] {
            since = Instant::now();
        }
        last = s;
    };
    assert_eq!(stats["total_received"], acked.len() as u64, "{stats}");
    // A worker's claim that lands after its own outcome can still leave a message
    // `processing` until the next start, so finishing is checked after a restart.
    let stuck = acked
        .iter()
        .filter(|id| http.status_of(**id) == "processing")
        .count();
    eprintln!(
        "{} posts: {} acknowledged, {refused} refused, {} of {} commits failed; \
         {stuck} acknowledged messages still processing before the restart",
        answers.len(),
        acked.len(),
        faults.failed(),
        faults.commits()
    );
    service.stop();

    let (mut service, http) = start(dir.path(), &Faults::new());
    http.wait_drained(Duration::from_secs(30));
    for id in &acked {
        assert_eq!(
            http.status_of(*id),
            "processed",
            "acknowledged message {id}"
        );
    }
    assert_eq!(http.stats()["total_received"], acked.len() as u64);
    service.stop();
}

#[test]
fn a_failing_disk_answers_503_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), &faults);

    let before = http.ingest(&order_body(1));
    assert_eq!(before.status, 200, "{}", before.text);
    let before = before.json["id"].as_i64().unwrap();
    // Nothing in flight when the disk fails: only ingest meets the failure.
    http.wait_status(before, "processed", Duration::from_secs(10));

    faults.fail_all(true);
    for n in 2..5 {
        assert_refused_for_storage(&http.ingest(&order_body(n)));
    }
    let ready = http.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.text.contains("commit failed"), "{}", ready.text);

    faults.fail_all(false);
    let after = http.ingest(&order_body(5));
    assert_eq!(after.status, 200, "{}", after.text);
    let after = after.json["id"].as_i64().unwrap();
    http.wait_status(after, "processed", Duration::from_secs(10));
    assert_eq!(http.get("/readyz").status, 200);
    assert_eq!(http.status_of(before), "processed");
    let stats = http.stats();
    assert_eq!(stats["total_received"], 2, "{stats}");
    assert_eq!(faults.failed(), 3);
    service.stop();
}
