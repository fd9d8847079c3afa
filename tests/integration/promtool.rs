//! `/metrics` as Prometheus's own linter sees it: the real binary serves a few webhooks (an
//! order, a duplicate, a body that goes to dead letters) so the counters, gauges and
//! histograms all carry samples, and `promtool check metrics` must accept the exposition.
//!
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it); `PROMTOOL_BIN`
//! names the binary when it is not on `PATH`. Without it the test skips with a note, except
//! under `CI=true` ([`harness::require`](crate::harness::require)).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{require, tool, Hookvault, Http};

/// Waits until nothing is queued or in flight and `dead` messages are dead letters.
fn wait_settled(http: &Http, dead: u64) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = http.stats();
        if stats["queue_size"] == 0 && stats["dead_letter_queue_size"] == dead {
            return;
        }
        assert!(Instant::now() < until, "queue did not settle: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `promtool check metrics` with `exposition` on stdin: (exit code, stdout + stderr).
fn promtool_check(promtool: &str, exposition: &str) -> (Option<i32>, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

const ORDER: &str = r#"{"embeds":[{"author":{"name":"Test Order"},"description":"Product\nTest Product\nPrice\n$99.99\nOrder Number\nPROM-1\nEmail\nprom@example.com"}]}"#;

#[test]
fn metrics_pass_promtool_check_metrics() {
    let promtool = tool("PROMTOOL_BIN", &["promtool"]);
    if !require(
        &[&promtool],
        "apt-get install prometheus; or set PROMTOOL_BIN",
    ) {
        return;
    }
    let server = Hookvault::new()
        .settings(|s| {
            s.queue.backoff_base_ms = 20;
            s.queue.backoff_max_ms = 100;
            // A second source, so the per-source families carry two series.
            s.sources = vec![
                toml::from_str("name = \"orders\"").unwrap(),
                toml::from_str("name = \"gh\"\nverify = \"github\"\nsecrets = [\"s\"]").unwrap(),
            ];
        })
        .spawn();
    let http = &server.http;
    let ingest = "/api/v2/webhooks/orders";
    let key = [("Idempotency-Key", "promtool-1")];
    assert_eq!(http.post_with(ingest, ORDER.as_bytes(), &key).status, 200);
    let dup = http.post_with(ingest, ORDER.as_bytes(), &key);
    assert_eq!(dup.status, 200);
    assert!(dup.text.contains("duplicate"), "{}", dup.text);
    // Not JSON: stored, then a dead letter.
    assert_eq!(http.ingest("{not json").status, 200);
    // A signature that does not match: refused, counted for its source.
    let forged = [("X-Hub-Signature-256", "sha256=00")];
    assert_eq!(
        http.post_with("/api/v2/webhooks/in/gh", b"{}", &forged)
            .status,
        401
    );
    wait_settled(http, 1);

    let metrics = http.get("/metrics");
    assert_eq!(metrics.status, 200);
    let exposition = metrics.text;
    // Every family has a sample, and the traffic above shows in the counters.
    let families: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() >= 20, "{exposition}");
    for family in &families {
        assert!(
            exposition
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(family)),
            "{family} has no sample"
        );
    }
    for sample in [
        "hookvault_webhooks_received_total 2",
        "hookvault_webhooks_duplicates_total 1",
        "hookvault_webhooks_dead_total 1",
        "hookvault_orders_created_total 1",
        "hookvault_webhooks_rejected_total{reason=\"signature_invalid\"} 1",
        "hookvault_source_received_total{source=\"orders\"} 2",
        "hookvault_source_received_total{source=\"gh\"} 0",
        "hookvault_source_dead_total{source=\"orders\"} 1",
        "hookvault_source_rejected_total{source=\"gh\"} 1",
    ] {
        assert!(
            exposition.lines().any(|l| l == sample),
            "{sample} missing:\n{exposition}"
        );
    }

    let (code, output) = promtool_check(&promtool, &exposition);
    println!(
        "promtool check metrics: exit {code:?}, {} families\n{output}",
        families.len()
    );
    assert_eq!(
        code,
        Some(0),
        "promtool check metrics rejected /metrics:\n{output}"
    );
}
