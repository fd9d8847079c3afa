//! `status` and `success_rate` as an operator reads them: messages, each counted once, and a
//! status that describes the present, so dealing with the failures (retry or discard) brings
//! back `healthy`. With the real order processor, as a shop sends them.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{order_body, Hookvault};

const DEAD: &str = "/api/v2/webhooks/queue/dead-letters";
const RETRY_ALL: &str = "/api/v2/webhooks/queue/retry-failed";

fn reasons(stats: &Value) -> Vec<String> {
    stats["status_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn one_bad_webhook_degrades_until_it_is_dealt_with_and_counts_once() {
    let s = Hookvault::new().start();
    let http = &s.http;
    for n in 0..11 {
        assert_eq!(http.ingest(&order_body(n)).status, 200);
    }
    let bad = http.ingest("{not json").json["id"].as_i64().unwrap();
    http.wait_status(bad, "dead", Duration::from_secs(10));
    let stats = http.wait_drained(Duration::from_secs(10));
    assert_eq!(stats["total_processed"], 11, "{stats}");
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["success_rate"], 91.67, "{stats}");
    assert_eq!(stats["status"], "degraded", "{stats}");
    assert_eq!(
        reasons(&stats),
        vec!["1 dead letter waits for an operator (retry or discard)"]
    );
    // Sub-millisecond parsing still shows as time spent.
    let avg = stats["avg_processing_time_ms"].as_f64().unwrap();
    assert!(avg > 0.0 && avg < 1000.0, "avg_processing_time_ms {avg}");

    // Retry it: still invalid, dead again. One message, one failure.
    let retried = http.post(RETRY_ALL, b"");
    assert_eq!(retried.status, 200, "{}", retried.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let entry = http.get(&format!("/api/v2/webhooks/logs/{bad}")).json;
        let stats = http.stats();
        if entry["status"] == "dead" && stats["total_requeued"] == 1 && stats["queue_size"] == 0 {
            break stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead again: {entry}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["success_rate"], 91.67, "{stats}");
    assert_eq!(stats["status"], "degraded", "{stats}");

    // Discard it: dealt with. Still a failure in the totals, but nothing waits: healthy.
    let gone = http.delete(&format!("{DEAD}/{bad}"));
    assert_eq!(gone.status, 200, "{}", gone.text);
    let stats = http.stats();
    assert_eq!(stats["dead_letter_queue_size"], 0, "{stats}");
    assert_eq!(stats["total_failed"], 1, "{stats}");
    assert_eq!(stats["total_discarded"], 1, "{stats}");
    assert_eq!(stats["success_rate"], 91.67, "{stats}");
    assert_eq!(stats["recent_finished"], 12, "{stats}");
    assert_eq!(stats["status"], "healthy", "{stats}");
    assert!(reasons(&stats).is_empty(), "{stats}");
}

#[test]
fn a_dead_letter_retried_and_processed_counts_as_one_success() {
    // A backend that refuses the first attempt for good and accepts the operator's retry.
    use hookvault::testing::Effect;
    use hookvault::testing::{Job, ProcessError, Processor};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct FailsOnce(AtomicBool);
    impl Processor for FailsOnce {
        fn process(&self, _job: &Job) -> Result<Effect, ProcessError> {
            if self.0.swap(true, Ordering::SeqCst) {
                Ok(Effect::Nothing)
            } else {
                Err(ProcessError::Permanent("backend said no".into()))
            }
        }
    }

    let s = Hookvault::new()
        .processor(Arc::new(FailsOnce(AtomicBool::new(false))))
        .start();
    let http = &s.http;
    let id = http.ingest("{}").json["id"].as_i64().unwrap();
    http.wait_status(id, "dead", Duration::from_secs(10));
    let stats = http.stats();
    assert_eq!(
        (
            stats["total_failed"].as_u64(),
            stats["success_rate"].as_f64()
        ),
        (Some(1), Some(0.0))
    );
    assert_eq!(stats["status"], "degraded", "{stats}");

    let retried = http.post(&format!("{DEAD}/{id}/retry"), b"");
    assert_eq!(retried.status, 200, "{}", retried.text);
    http.wait_status(id, "processed", Duration::from_secs(10));
    let stats = http.wait_drained(Duration::from_secs(10));
    assert_eq!(stats["total_processed"], 1, "{stats}");
    assert_eq!(stats["total_failed"], 0, "{stats}");
    assert_eq!(stats["success_rate"], 100.0, "{stats}");
    assert_eq!(stats["recent_success_rate"], 100.0, "{stats}");
    assert_eq!(stats["recent_finished"], 1, "{stats}");
    assert_eq!(stats["status"], "healthy", "{stats}");
}
