//! The whole run (send, drain, verify, verdict) against an in-memory fake server, through
//! `run_with`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use hookvault_loadtest::admin::{LogEntry, Stats};
use hookvault_loadtest::client::{Reply, Transport};
use hookvault_loadtest::{run_with, AdminApi, Options};

/// A fake hookvault: acks with increasing ids and "processes" all but `lose` of them instantly.
#[derive(Clone)]
struct FakeServer {
    next_id: Arc<AtomicI64>,
    acked: Arc<AtomicU64>,
    lose: u64,
    status: u16,
}

impl Transport for FakeServer {
    fn post(&mut self, body: &[u8]) -> Result<Reply, String> {
        serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())?;
        if self.status != 200 {
            return Ok(Reply {
                status: self.status,
                body: r#"{"error":"backlog_full"}"#.into(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.acked.fetch_add(1, Ordering::Relaxed);
        Ok(Reply {
            status: 200,
            body: format!(r#"{{"status":"queued","id":{id}}}"#),
        })
    }
}

impl AdminApi for FakeServer {
    fn stats(&mut self) -> Result<Stats, String> {
        Ok(Stats {
            total_processed: 1000 + self.acked.load(Ordering::Relaxed).saturating_sub(self.lose),
            total_failed: 7,
            ..Stats::default()
        })
    }
    fn log(&mut self, id: i64) -> Result<Option<LogEntry>, String> {
        let lost = id >= self.next_id.load(Ordering::Relaxed) - self.lose as i64;
        Ok((!lost).then(|| LogEntry {
            id,
            status: "processed".into(),
            ..LogEntry::default()
        }))
    }
}

fn fake(lose: u64, status: u16) -> FakeServer {
    FakeServer {
        next_id: Arc::new(AtomicI64::new(1)),
        acked: Arc::new(AtomicU64::new(0)),
        lose,
        status,
    }
}

fn opts() -> Options {
    let mut o = Options::closed("http://fake", 300, 4);
    o.progress = false;
    o
}

fn go(server: &FakeServer, o: &Options) -> hookvault_loadtest::Report {
    let make = || -> Box<dyn Transport> { Box::new(server.clone()) };
    run_with(o, &make, &mut server.clone()).unwrap()
}

#[test]
fn everything_processed_is_verified() {
    let r = go(&fake(0, 200), &opts());
    assert!(r.ok && r.verified, "{}", r.to_text());
    assert_eq!((r.sent, r.queued, r.lost), (300, 300, 0));
    let v = r.verification.as_ref().unwrap();
    assert_eq!(
        (v.acked, v.processed_delta, v.failed_delta, v.sampled),
        (300, 300, 0, 200)
    );
    assert!(r.end_to_end_rate.unwrap() > 0.0);
    assert!(r.to_text().contains("result:           PASS"));
}

#[test]
fn a_lost_ack_fails_the_run() {
    let mut o = opts();
    o.verify_sample = 1000; // check every id
    let r = go(&fake(2, 200), &o);
    assert!(!r.ok && !r.verified);
    assert_eq!(r.lost, 2);
    assert!(
        r.failures
            .iter()
            .any(|f| f.starts_with("loss: 2 acknowledged")),
        "{:?}",
        r.failures
    );
    assert!(r.to_text().contains("FAIL:             loss: 2"));
}

#[test]
fn unexpected_status_fails_unless_allowed() {
    let r = go(&fake(0, 503), &opts());
    assert!(!r.ok);
    assert_eq!(r.other_status.get(&503), Some(&300));
    assert!(
        r.failures
            .iter()
            .any(|f| f == "300 unexpected non-2xx answers: 503 x300"),
        "{:?}",
        r.failures
    );

    let mut o = opts();
    o.allow_status = vec![503];
    let r = go(&fake(0, 503), &o);
    assert!(r.ok, "{:?}", r.failures);
    assert_eq!(r.queued, 0);
}
