//! "No 2xx, no promise" when commits fail, through the fault-injecting store: no root, no
//! tmpfs, the failures exactly where the test wants them. A refused webhook is answered 503
//! with Retry-After and nothing of it is kept; an acknowledged one is never lost, and ends
//! `processed` or `dead` while the service runs (no restart needed).

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use hookvault::testing::store::{FailAt, Faults};

const INGEST: &str = "/api/v2/webhooks/orders";

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

/// What one intermittent-fault run ended with.
#[derive(Debug)]
struct Outcome {
    posts: usize,
    acked: usize,
    refused: usize,
    commits: u64,
    failed_commits: u64,
    /// Acknowledged messages neither `processed` nor `dead` when the wait ended.
    stuck: usize,
    /// Acknowledged messages the store does not have.
    lost: usize,
    /// From the faults clearing to the last acknowledged message finishing.
    settled_in: Duration,
}

/// `clients` connections post `per_client` distinct orders each while every `every`-th commit
/// fails (claims and outcomes meet the failures in whatever order the load makes); then the
/// faults clear and the service, never restarted, gets `wait` to finish every acknowledged
/// message. Checks what must hold whatever the figures: a refusal is a 503 for storage,
/// nothing refused is stored, and no order is stored twice or from the wrong message.
fn intermittent(every: u64, clients: u64, per_client: u64, wait: Duration) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), &faults);
    faults.fail_every(every);

    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let http = http.clone();
            thread::spawn(move || {
                (0..per_client)
                    .map(|i| {
                        let n = c * 100_000 + i;
                        (n, http.ingest(&order_body(n)))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(u64, Answer)> = threads
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    faults.clear();
    let cleared = Instant::now();

    let mut acked = Vec::new();
    for (n, a) in &answers {
        match a.status {
            200 => acked.push((*n, a.json["id"].as_i64().expect("an id with the 200"))),
            _ => assert_refused_for_storage(a),
        }
    }
    // Live, without a restart: every acknowledged message must finish.
    let until = cleared + wait;
    loop {
        let s = http.stats();
        if s["queue_size"] == 0 || Instant::now() >= until {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let settled_in = cleared.elapsed();
    let (mut stuck, mut lost) = (0, 0);
    for (n, id) in &acked {
        let entry = http.get(&format!("/api/v2/webhooks/logs/{id}"));
        if entry.status == 404 {
            lost += 1;
            continue;
        }
        match entry.json["status"].as_str() {
            Some("processed") => {
                // Exactly one order, stored from this very message.
                let order = http.get(&format!("/api/v2/orders/TEST-{n}"));
                assert_eq!(order.status, 200, "order of message {id}: {}", order.text);
                assert_eq!(order.json["message_id"], *id, "{}", order.text);
            }
            Some("dead") => {}
            _ => stuck += 1,
        }
    }
    let stats = http.stats();
    assert_eq!(
        stats["total_received"],
        acked.len() as u64,
        "something refused was stored, or something acknowledged was not: {stats}"
    );
    assert_eq!(
        stats["total_orders"], stats["total_processed"],
        "an order stored twice or missing: {stats}"
    );
    let outcome = Outcome {
        posts: answers.len(),
        acked: acked.len(),
        refused: answers.len() - acked.len(),
        commits: faults.commits(),
        failed_commits: faults.failed(),
        stuck,
        lost,
        settled_in,
    };
    eprintln!("every {every}th commit failing: {outcome:?}");
    service.stop();
    outcome
}

fn assert_nothing_stuck(o: &Outcome) {
    assert!(o.failed_commits > 0, "no commit failed: {o:?}");
    assert!(o.acked > o.posts / 3, "too few acknowledged: {o:?}");
    assert_eq!(o.lost, 0, "{o:?}");
    assert_eq!(o.stuck, 0, "{o:?}");
}

#[test]
fn every_third_commit_failing_leaves_nothing_acknowledged_unfinished() {
    let o = intermittent(3, 6, 50, Duration::from_secs(30));
    assert!(
        o.refused > 0,
        "every post acknowledged despite failing commits: {o:?}"
    );
    assert_nothing_stuck(&o);
}

#[test]
fn every_seventh_commit_failing_leaves_nothing_acknowledged_unfinished() {
    assert_nothing_stuck(&intermittent(7, 6, 50, Duration::from_secs(30)));
}

#[test]
fn every_fortieth_commit_failing_leaves_nothing_acknowledged_unfinished() {
    assert_nothing_stuck(&intermittent(40, 6, 50, Duration::from_secs(30)));
}

/// The figure for the record: every 40th commit failing during 3,000 posts over 8
/// connections, then 30 s. Run with
/// `cargo test --release --test integration faults::issue_figure -- --ignored --nocapture`
/// (`HOOKVAULT_FAULT_EVERY=3` for a harsher disk).
#[test]
#[ignore = "a measurement (3,000 posts); run by hand"]
fn issue_figure_every_fortieth_commit_failing_during_3000_posts() {
    let every = std::env::var("HOOKVAULT_FAULT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let o = intermittent(every, 8, 375, Duration::from_secs(30));
    eprintln!(
        "FIGURE (every {every}th commit failing): {} posts, {} acknowledged, {} refused, {}/{} commits failed, \
         stuck 30 s after the faults cleared: {}, lost: {}, all finished {:.2} s after",
        o.posts,
        o.acked,
        o.refused,
        o.failed_commits,
        o.commits,
        o.stuck,
        o.lost,
        o.settled_in.as_secs_f64()
    );
    assert_nothing_stuck(&o);
}

/// Senders refused together must not all come back at the same second: each 503's
/// `Retry-After` is drawn from 2 s to 4 s.
#[test]
fn a_storage_refusal_spreads_senders_out() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), &faults);
    faults.fail_all(true);
    let waits: Vec<u64> = (0..40)
        .map(|n| {
            let refused = http.ingest(&order_body(n));
            assert_refused_for_storage(&refused);
            let wait = refused.header("Retry-After").expect("Retry-After");
            wait.parse()
                .unwrap_or_else(|_| panic!("Retry-After {wait:?} is not seconds"))
        })
        .collect();
    faults.fail_all(false);
    assert!(waits.iter().all(|w| (2..=4).contains(w)), "{waits:?}");
    let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
    // 40 draws of three values: all equal has a chance of about 3 in 10^19.
    assert!(
        distinct.len() >= 2,
        "every Retry-After was the same: {waits:?}"
    );
    service.stop();
}

/// The answer lost after a durable COMMIT (a dropped PostgreSQL connection): the sender is
/// refused, yet the message is stored; it is processed without a restart, and the sender's
/// retry with the same Idempotency-Key finds it instead of storing it twice.
#[test]
fn a_commit_whose_answer_is_lost_is_processed_once_and_found_by_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (mut service, http) = start(dir.path(), &faults);
    faults.fail_at(FailAt::AfterCommit);
    faults.fail_next(1);
    let key = [("Idempotency-Key", "lost-answer")];
    let body = order_body(7);
    assert_refused_for_storage(&http.post_with(INGEST, body.as_bytes(), &key));
    let retry = http.post_with(INGEST, body.as_bytes(), &key);
    assert_eq!(retry.status, 200, "{}", retry.text);
    let id = retry.json["id"].as_i64().unwrap();
    http.wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(http.stats()["total_orders"], 1);
    service.stop();
    // The durable totals counted it once. (The live ones missed the commit whose answer was
    // lost until this restart counts them from the disk.)
    let (mut service, http) = start(dir.path(), &Faults::new());
    let stats = http.stats();
    assert_eq!(stats["total_received"], 1, "{stats}");
    assert_eq!(stats["total_processed"], 1, "{stats}");
    assert_eq!(stats["total_duplicates"], 1, "{stats}");
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
