//! The load tester against the real server: hookvault started in this process (library
//! `Service`, temp database), driven over loopback HTTP with verification on. Only counts and
//! verdicts are asserted, never speed.

use std::path::PathBuf;
use std::time::Duration;

use hookvault::testing::Service;
use hookvault::Settings;
use hookvault_loadtest::{run, Options, PayloadSpec, Report};

/// hookvault on an ephemeral port with its database in a temp dir.
struct Server {
    service: Option<Service>,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::default();
        s.server.listen = "127.0.0.1:0".into();
        s.websocket.listen = "off".into();
        s.storage.path = dir.path().join("hookvault.db");
        s.queue.workers = 4;
        s.server.handler_threads = 8;
        // A transient failure (none is expected) must not stretch the drain to minutes.
        s.queue.backoff_base_ms = 20;
        s.queue.backoff_max_ms = 200;
        s.queue.shutdown_timeout_s = 5;
        let service = Service::start(s).expect("hookvault starts");
        let url = format!("http://{}", service.http_addr());
        Server {
            service: Some(service),
            url,
            _dir: dir,
        }
    }

    fn stats(&self) -> hookvault::testing::StatsSnapshot {
        self.service.as_ref().unwrap().stats()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.service.take() {
            s.stop();
        }
    }
}

fn prepared(mut o: Options) -> Options {
    o.progress = false;
    o.drain_timeout = Duration::from_secs(60);
    o
}

/// Zero loss: every request answered 2xx, every ack reached the expected final state.
fn assert_no_loss(report: &Report, sent: u64) {
    let text = report.to_text();
    assert!(report.ok && report.verified && report.lost == 0, "{text}");
    assert_eq!(report.sent, sent, "{text}");
    assert_eq!(report.ok_2xx, sent, "{text}");
    assert_eq!(report.queued, sent, "{text}");
    assert_eq!(report.duplicates, 0, "{text}");
    assert_eq!(report.unparsed_acks, 0, "{text}");
    assert_eq!(report.transport_errors, 0, "{text}");
    assert!(report.other_status.is_empty(), "{text}");
    let v = report.verification.as_ref().expect("verification ran");
    assert!(v.drained, "{text}");
    assert_eq!(v.acked, sent, "{text}");
    assert_eq!(v.sample_bad, 0, "{text}");
    assert_eq!(
        v.processed_delta + v.failed_delta,
        sent,
        "every ack finished exactly once: {text}"
    );
    assert!(report.end_to_end_rate.unwrap_or(0.0) > 0.0, "{text}");
}

#[test]
fn closed_loop_loses_nothing() {
    let server = Server::start();
    let mut opts = prepared(Options::closed(&server.url, 500, 8));
    opts.verify_sample = 500; // check every acknowledged id through the logs endpoint
    let report = run(&opts).unwrap();
    assert_no_loss(&report, 500);
    let v = report.verification.as_ref().unwrap();
    assert_eq!(
        (v.processed_delta, v.failed_delta),
        (500, 0),
        "{}",
        report.to_text()
    );
    assert_eq!(v.sampled, 500);
    assert_eq!(report.mode, "closed");

    let stats = server.stats();
    assert_eq!(stats.total_received, 500);
    assert_eq!(stats.total_processed, 500);
    assert_eq!(stats.queue_size, 0);
}

#[test]
fn open_loop_loses_nothing() {
    let server = Server::start();
    let mut opts = prepared(Options::open(&server.url, 200.0, Duration::from_secs(1)));
    opts.verify_sample = 200;
    let report = run(&opts).unwrap();
    assert_no_loss(&report, 200);
    let v = report.verification.as_ref().unwrap();
    assert_eq!(
        (v.processed_delta, v.failed_delta),
        (200, 0),
        "{}",
        report.to_text()
    );
    assert_eq!(report.mode, "open");
    let schedule = report
        .schedule
        .as_ref()
        .expect("open loop reports its schedule");
    assert_eq!(schedule.target_rate, 200.0);
    assert_eq!(report.latency.count, 200);
}

#[test]
fn fixture_replay_ends_invalid_bodies_dead() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/webhooks");
    assert!(fixtures.is_dir(), "{} is missing", fixtures.display());
    let server = Server::start();
    let mut opts = prepared(Options::closed(&server.url, 300, 4));
    opts.payload = PayloadSpec::Fixtures(fixtures);
    opts.verify_sample = 300; // every ack, so every fixture's final state is checked
    let report = run(&opts).unwrap();
    assert!(
        report.payload.contains("fixtures round-robin"),
        "{}",
        report.payload
    );
    assert_no_loss(&report, 300);
    let v = report.verification.as_ref().unwrap();
    assert!(
        v.expected_dead > 0,
        "the fixtures include invalid bodies: {}",
        report.to_text()
    );
    assert_eq!(
        v.failed_delta,
        v.expected_dead,
        "exactly the invalid fixtures end dead: {}",
        report.to_text()
    );
    assert_eq!(v.processed_delta, 300 - v.expected_dead);

    let stats = server.stats();
    assert_eq!(stats.dead_letter_queue_size, v.expected_dead);
    assert_eq!(stats.total_failed, v.expected_dead);
}
