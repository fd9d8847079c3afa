//! Workers: retries with backoff, dead letters, contained panics, backpressure. Each test
//! plugs a processor with a known behaviour into the library's server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookvault::testing::Effect;
use hookvault::testing::{Job, ProcessError, Processor};

use crate::harness::{order_body, Hookvault};

/// Fails transiently the first `fail_first` attempts of every message, then succeeds;
/// counts attempts per message.
struct Flaky {
    fail_first: u32,
    attempts: Mutex<HashMap<i64, u32>>,
}

impl Processor for Flaky {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        let mut map = self.attempts.lock().unwrap();
        let n = map.entry(job.id).or_insert(0);
        *n += 1;
        if *n <= self.fail_first {
            Err(ProcessError::Transient(format!(
                "backend timed out (attempt {n})"
            )))
        } else {
            Ok(Effect::Nothing)
        }
    }
}

fn flaky(fail_first: u32) -> Arc<Flaky> {
    Arc::new(Flaky {
        fail_first,
        attempts: Mutex::new(HashMap::new()),
    })
}

#[test]
fn a_transient_failure_succeeds_on_retry() {
    let p = flaky(2);
    let s = Hookvault::new()
        .settings(|c| c.queue.max_retries = 3)
        .processor(p.clone())
        .start();
    let id = s.http.ingest("{}").json["id"].as_i64().unwrap();
    let entry = s.http.wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 3);
    assert_eq!(p.attempts.lock().unwrap()[&id], 3);
    let stats = s.http.stats();
    assert_eq!(stats["total_retried"], 2);
    assert_eq!(stats["total_failed"], 0);
}

#[test]
fn always_failing_ends_dead_after_exactly_max_retries_retries() {
    let p = flaky(u32::MAX);
    let s = Hookvault::new()
        .settings(|c| c.queue.max_retries = 3)
        .processor(p.clone())
        .start();
    let id = s.http.ingest("{}").json["id"].as_i64().unwrap();
    let entry = s.http.wait_status(id, "dead", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 4, "1 attempt + 3 retries");
    assert_eq!(p.attempts.lock().unwrap()[&id], 4);
    let err = entry["last_error"].as_str().unwrap();
    assert!(
        err.contains("gave up after 4 attempts") && err.contains("backend timed out"),
        "{err}"
    );
    assert_eq!(s.http.stats()["dead_letter_queue_size"], 1);
}

#[test]
fn backoff_waits_between_attempts() {
    let p = flaky(2);
    // 100 ms, then 200 ms (±10%): at least ~270 ms in all.
    let s = Hookvault::new()
        .settings(|c| {
            c.queue.backoff_base_ms = 100;
            c.queue.backoff_max_ms = 1000;
        })
        .processor(p)
        .start();
    let started = Instant::now();
    let id = s.http.ingest("{}").json["id"].as_i64().unwrap();
    s.http.wait_status(id, "processed", Duration::from_secs(10));
    assert!(
        started.elapsed() >= Duration::from_millis(270),
        "{:?}",
        started.elapsed()
    );
}

/// A retry whose backoff a stop cut short waits on disk with its due time. After a restart
/// nothing wakes the feeder for it (it sleeps between wake-ups instead of polling), so the
/// feeder must have read that time and hand the message over once it has passed.
#[test]
fn a_retry_cut_short_by_a_stop_runs_when_its_backoff_ends_after_the_restart() {
    let mut s = Hookvault::new()
        .settings(|c| {
            c.queue.backoff_base_ms = 1_500;
            c.queue.backoff_max_ms = 1_500;
            c.queue.shutdown_timeout_s = 0;
        })
        .processor(flaky(1))
        .start();
    let id = s.http.ingest("{}").json["id"].as_i64().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let v = s.http.get(&format!("/api/v2/webhooks/logs/{id}")).json;
        if v["status"] == "queued" && v["attempts"] == 1 && !v["next_attempt_at"].is_null() {
            break;
        }
        assert!(Instant::now() < until, "no retry scheduled: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.stop();

    let again = Hookvault::new()
        .database(s.database())
        .processor(Arc::new(hookvault::testing::JsonCheckProcessor))
        .start();
    let entry = again
        .http
        .wait_status(id, "processed", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 2, "{entry}");
}

struct Permanent(AtomicU32);

impl Processor for Permanent {
    fn process(&self, _job: &Job) -> Result<Effect, ProcessError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(ProcessError::Permanent("no order number".into()))
    }
}

#[test]
fn a_permanent_error_is_dead_after_one_attempt() {
    let p = Arc::new(Permanent(AtomicU32::new(0)));
    let s = Hookvault::new().processor(p.clone()).start();
    let id = s.http.ingest("{}").json["id"].as_i64().unwrap();
    let entry = s.http.wait_status(id, "dead", Duration::from_secs(10));
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["last_error"], "no order number");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(p.0.load(Ordering::SeqCst), 1);
}

/// Panics on bodies containing "boom", succeeds otherwise.
struct Panicky;

impl Processor for Panicky {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        if job.payload.windows(4).any(|w| w == b"boom") {
            panic!("processor exploded on message {}", job.id);
        }
        Ok(Effect::Nothing)
    }
}

#[test]
fn a_panic_is_contained_to_its_message() {
    let s = Hookvault::new()
        .settings(|c| c.queue.workers = 1)
        .processor(Arc::new(Panicky))
        .start();
    let bad = s.http.ingest(r#"{"x":"boom"}"#).json["id"]
        .as_i64()
        .unwrap();
    let entry = s.http.wait_status(bad, "dead", Duration::from_secs(10));
    assert!(entry["last_error"]
        .as_str()
        .unwrap()
        .contains("processor panicked: processor exploded"));
    // The single worker survived and keeps working.
    let good = s.http.ingest("{}").json["id"].as_i64().unwrap();
    s.http
        .wait_status(good, "processed", Duration::from_secs(10));
    let stats = s.http.stats();
    assert_eq!(stats["workers_running"], 1);
    assert_eq!(stats["status"], "degraded", "50% success rate: {stats}");
}

/// Holds every message until the gate opens.
struct Gate(Mutex<bool>, std::sync::Condvar);

impl Processor for Gate {
    fn process(&self, _job: &Job) -> Result<Effect, ProcessError> {
        let mut open = self.0.lock().unwrap();
        while !*open {
            open = self.1.wait(open).unwrap();
        }
        Ok(Effect::Nothing)
    }
}

#[test]
fn a_full_backlog_answers_503_then_recovers() {
    let gate = Arc::new(Gate(Mutex::new(false), std::sync::Condvar::new()));
    let s = Hookvault::new()
        .settings(|c| {
            c.queue.max_backlog = 5;
            c.queue.workers = 1;
            c.queue.capacity = 2;
        })
        .processor(gate.clone())
        .start();
    let mut acked = Vec::new();
    for _ in 0..5 {
        let a = s.http.ingest("{}");
        assert_eq!(a.status, 200);
        acked.push(a.json["id"].as_i64().unwrap());
    }
    let refused = s.http.ingest("{}");
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json["error"], "backlog_full");
    // 5 s to 10 s, spread per answer (faults::a_storage_refusal_spreads_senders_out).
    let wait: u64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!((5..=10).contains(&wait), "Retry-After: {wait}");
    assert_eq!(s.http.stats()["total_received"], 5, "a 503 stores nothing");
    assert_eq!(s.http.stats()["rejected"], 1);
    let metrics = s.http.get("/metrics").text;
    assert!(
        metrics.contains("hookvault_webhooks_rejected_total{reason=\"backlog_full\"} 1"),
        "{metrics}"
    );

    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    s.http.wait_drained(Duration::from_secs(10));
    assert_eq!(
        s.http.ingest("{}").status,
        200,
        "ingest resumes once the backlog drains"
    );
    s.http.wait_drained(Duration::from_secs(10));
    for id in acked {
        assert_eq!(s.http.status_of(id), "processed");
    }
}

#[test]
fn more_messages_than_the_channel_holds_all_get_processed() {
    // capacity 4: most messages overflow the channel and reach workers through the feeder.
    let s = Hookvault::new()
        .settings(|c| {
            c.queue.capacity = 4;
            c.queue.workers = 2;
        })
        .start();
    let ids: Vec<i64> = (0..300)
        .map(|n| s.http.ingest(&order_body(n)).json["id"].as_i64().unwrap())
        .collect();
    let stats = s.http.wait_drained(Duration::from_secs(30));
    assert_eq!(stats["total_processed"], 300, "{stats}");
    for id in ids.iter().step_by(37) {
        assert_eq!(s.http.status_of(*id), "processed");
    }
}

#[test]
fn graceful_stop_leaves_unfinished_work_queued_and_resumes_it() {
    let gate = Arc::new(Gate(Mutex::new(false), std::sync::Condvar::new()));
    let mut s = Hookvault::new()
        .settings(|c| {
            c.queue.workers = 1;
            c.queue.shutdown_timeout_s = 0;
        })
        .processor(gate.clone())
        .start();
    let ids: Vec<i64> = (0..5)
        .map(|_| s.http.ingest("{}").json["id"].as_i64().unwrap())
        .collect();
    // The worker holds message 1; open the gate from another thread after stop begins.
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
        })
    };
    let summary = s.stop();
    opener.join().unwrap();
    assert_eq!(summary.workers_left_behind, 0);
    assert!(summary.left_queued >= 3, "{summary:?}");

    // Restart on the same database with a normal processor: everything finishes.
    let mut again = Hookvault::new()
        .database(s.database())
        .settings(|c| c.queue.workers = 2)
        .processor(Arc::new(hookvault::testing::JsonCheckProcessor))
        .start();
    again.http.wait_drained(Duration::from_secs(10));
    for id in ids {
        assert_eq!(again.http.status_of(id), "processed", "message {id}");
    }
    again.stop();
}
