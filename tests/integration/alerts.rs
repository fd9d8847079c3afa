//! Alerts end to end: the real binary, `[[alerts]]` targets pointing at local receivers (one
//! per kind), alerts going out through the relay's durable deliveries. A test alert arrives
//! at every kind in its format; six bad bodies give one dead-letter digest naming 6; status
//! degraded then, after the operator discards, healthy again; a receiver answering 429 then
//! 200 gets the alert once; a receiver down during the event gets it once it is back, across
//! a hookvault restart; the URLs' secrets appear in no log line and no API answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hookvault::Settings;
use hookvault::{AlertEvent, AlertKind, AlertTarget};
use serde_json::Value;
use tiny_http::{Header, Response, Server};

use crate::harness::{Binary, Hookvault};

const WAIT: Duration = Duration::from_secs(30);
/// Every alert URL carries this; it must never be shown.
pub const SECRET: &str = "s3cr3t-alert-token";

/// One request a receiver took.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Got>,
    /// Statuses to answer next, in order; then 200 (204 for a Discord path).
    script: Vec<u16>,
}

/// A local alert receiver: records every request, answers as scripted.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> Receiver {
        let server = Server::http(addr).expect("receiver binds");
        let addr = server.server_addr().to_ip().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Relaxed) {
                if let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) {
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    let headers = req
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                        .collect();
                    let path = req.url().to_string();
                    let mut state = s.lock().unwrap();
                    let status = if state.script.is_empty() {
                        200
                    } else {
                        state.script.remove(0)
                    };
                    state.got.push(Got {
                        path,
                        headers,
                        body,
                        status,
                    });
                    drop(state);
                    let mut resp = Response::from_string(if status == 429 {
                        r#"{"message":"slow down","retry_after":0.5}"#
                    } else {
                        "{}"
                    })
                    .with_status_code(status);
                    if status == 429 {
                        resp = resp.with_header(Header::from_bytes("Retry-After", "1").unwrap());
                    }
                    let _ = req.respond(resp);
                }
            }
        });
        Receiver {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script = statuses.to_vec();
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.lock().unwrap().got.clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect()
    }

    /// Waits until `matching` accepted requests arrived; returns them.
    pub fn wait_for(&self, what: &str, matching: impl Fn(&Got) -> bool) -> Got {
        let until = Instant::now() + WAIT;
        loop {
            if let Some(g) = self.accepted().into_iter().find(|g| matching(g)) {
                return g;
            }
            assert!(
                Instant::now() < until,
                "no {what} within {WAIT:?}; got {:?}",
                self.got()
                    .iter()
                    .map(|g| (g.status, g.text()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops listening (the port is free again).
    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A target of `kind` at `addr` whose URL carries [`SECRET`].
pub fn target(name: &str, kind: AlertKind, addr: SocketAddr, min_interval_s: u64) -> AlertTarget {
    let path = match kind {
        AlertKind::Discord => format!("/api/webhooks/4242/{SECRET}"),
        _ => format!("/{name}/{SECRET}"),
    };
    AlertTarget {
        name: name.into(),
        kind,
        url: format!("http://{addr}{path}"),
        events: AlertEvent::ALL.to_vec(),
        min_interval_s,
    }
}

/// Quick checks, quick retries, no waiting on a dead receiver for long.
pub fn fast(s: &mut Settings, targets: Vec<AlertTarget>) {
    s.alerts = targets;
    s.alerting.check_interval_s = 1;
    s.queue.backoff_base_ms = 100;
    s.queue.backoff_max_ms = 500;
    s.queue.max_retries = 0;
    s.relay.timeout_s = 2;
    s.relay.max_attempts = 1000;
}

const BAD: &str = "{not json";

/// Everything the server said and answers that could hold a URL: none may hold the secret.
pub fn assert_no_secret(server: &Binary) {
    let http = &server.http;
    for path in [
        "/api/v2/webhooks/queue/stats",
        "/api/v2/deliveries",
        "/api/v2/deliveries?state=pending",
        "/metrics",
    ] {
        let answer = http.get(path);
        assert!(
            !answer.text.contains(SECRET),
            "{path} shows the alert URL's secret:\n{}",
            answer.text
        );
    }
    let log = server.stderr();
    for line in log.lines() {
        assert!(
            !line.contains(SECRET),
            "a log line shows the secret: {line}"
        );
    }
}

fn summaries(r: &Receiver) -> Vec<String> {
    r.accepted()
        .iter()
        .map(|g| g.json()["summary"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_test_alert_reaches_every_kind_in_its_format() {
    let receivers: Vec<(AlertKind, Receiver)> = [
        AlertKind::Discord,
        AlertKind::Slack,
        AlertKind::Ntfy,
        AlertKind::Webhook,
    ]
    .into_iter()
    .map(|k| (k, Receiver::start()))
    .collect();
    let targets: Vec<AlertTarget> = receivers
        .iter()
        .enumerate()
        .map(|(i, (k, r))| target(&format!("t{i}"), *k, r.addr, 60))
        .collect();
    let server = Hookvault::new().settings(move |s| fast(s, targets)).spawn();
    let answer = server.http.post("/api/v2/alerts/test", b"");
    assert_eq!(answer.status, 200, "{}", answer.text);
    let queued = answer.json["queued"].as_array().unwrap();
    assert_eq!(queued.len(), 4, "{}", answer.text);
    assert!(queued.iter().all(|q| q["delivery_id"].as_i64().is_some()));
    assert_eq!(answer.json["failed"], serde_json::json!([]));

    for (kind, r) in &receivers {
        let got = r.wait_for("test alert", |_| true);
        match kind {
            AlertKind::Discord => {
                let v = got.json();
                assert!(got.path.starts_with("/api/webhooks/4242/"), "{}", got.path);
                assert!(v["content"].as_str().unwrap().contains("test alert"), "{v}");
                assert!(v["embeds"][0]["title"].is_string(), "{v}");
            }
            AlertKind::Slack => {
                let v = got.json();
                assert!(v["text"].as_str().unwrap().contains("test alert"), "{v}");
            }
            AlertKind::Ntfy => {
                assert!(got.header("Title").unwrap().contains("test alert"));
                assert_eq!(got.header("Priority"), Some("3"));
                assert!(got.header("Tags").unwrap().contains("test"));
                assert!(got.text().contains("test alert"));
            }
            AlertKind::Webhook => {
                let v = got.json();
                assert_eq!(v["event"], "test");
                assert_eq!(v["severity"], "info");
                for field in ["summary", "details", "node", "at"] {
                    assert!(!v[field].is_null(), "{field} missing: {v}");
                }
            }
        }
    }
    let stats = server.http.stats();
    assert_eq!(stats["alerts"]["leader"], true, "{stats}");
    assert_eq!(
        stats["alerts"]["targets"]["t3"]["last_alert"]["event"],
        "test"
    );
    assert_no_secret(&server);
}

#[test]
fn six_bad_bodies_are_one_digest_and_status_recovers_after_a_discard() {
    let r = Receiver::start();
    let t = target("ops", AlertKind::Webhook, r.addr, 2);
    let server = Hookvault::new().settings(move |s| fast(s, vec![t])).spawn();
    let http = &server.http;
    let ids: Vec<i64> = (0..6)
        .map(|_| http.ingest(BAD).json["id"].as_i64().unwrap())
        .collect();
    let dead = r.wait_for("dead-letter alert", |g| g.json()["event"] == "dead_letter");
    assert_eq!(
        dead.json()["summary"],
        "6 new dead letters",
        "{}",
        dead.text()
    );
    assert!(
        dead.text()
            .contains("Source: orders at /api/v2/webhooks/orders"),
        "{}",
        dead.text()
    );
    let degraded = r.wait_for("status alert", |g| {
        g.json()["event"] == "status" && g.json()["summary"] == "hookvault is degraded"
    });
    assert_eq!(degraded.json()["severity"], "warning");

    for id in &ids {
        assert_eq!(
            http.delete(&format!("/api/v2/webhooks/queue/dead-letters/{id}"))
                .status,
            200
        );
    }
    r.wait_for("recovery", |g| {
        g.json()["event"] == "status" && g.json()["summary"] == "resolved: hookvault is degraded"
    });
    // A moment more: still one alert per change, no repeats.
    std::thread::sleep(Duration::from_secs(3));
    let all = summaries(&r);
    let count = |s: &str| all.iter().filter(|x| x.as_str() == s).count();
    assert_eq!(count("6 new dead letters"), 1, "{all:?}");
    assert_eq!(count("hookvault is degraded"), 1, "{all:?}");
    assert_eq!(count("resolved: hookvault is degraded"), 1, "{all:?}");
    assert_eq!(all.len(), 3, "{all:?}");
    assert_no_secret(&server);
}

#[test]
fn a_receiver_answering_429_then_200_gets_the_alert_once() {
    let r = Receiver::start();
    r.script(&[429, 429]);
    let t = target("ops", AlertKind::Webhook, r.addr, 60);
    let server = Hookvault::new().settings(move |s| fast(s, vec![t])).spawn();
    assert_eq!(server.http.post("/api/v2/alerts/test", b"").status, 200);
    r.wait_for("test alert", |g| g.json()["event"] == "test");
    std::thread::sleep(Duration::from_secs(2));
    let got = r.got();
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(statuses, [429, 429, 200], "{statuses:?}");
    assert_eq!(r.accepted().len(), 1);
    assert_no_secret(&server);
}

#[test]
fn a_receiver_down_during_the_event_gets_it_after_a_restart_and_its_return() {
    // The receiver's port, free while it is down.
    let port = {
        let r = Receiver::start();
        let addr = r.addr;
        r.stop();
        addr
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alerts.db");
    let t = target("ops", AlertKind::Webhook, port, 60);
    let settings = {
        let t = t.clone();
        move |s: &mut Settings| fast(s, vec![t])
    };
    let mut first = Hookvault::new().database(&db).settings(settings).spawn();
    assert_eq!(first.http.ingest(BAD).status, 200);
    // The dead-letter alert is queued (a durable delivery, failing while the receiver is
    // down; the status alert went before it).
    let until = Instant::now() + WAIT;
    loop {
        let stats = first.http.stats();
        if stats["alerts"]["targets"]["ops"]["last_alert"]["event"] == "dead_letter" {
            break;
        }
        assert!(
            Instant::now() < until,
            "no dead-letter alert queued: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let owed = first.http.get("/api/v2/deliveries?state=pending").json;
    assert_eq!(owed["items"].as_array().map(Vec::len), Some(2), "{owed}");
    // The failing alert target shows in the stats and the log, and raises no alert itself.
    let until = Instant::now() + WAIT;
    while first.http.stats()["alerts"]["targets"]["ops"]["state"] != "failing" {
        assert!(Instant::now() < until, "{}", first.http.stats()["alerts"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        first.stderr().contains("alert target ops is failing"),
        "{}",
        first.stderr()
    );
    first.stop();
    assert_no_secret_in_log(&first.stderr());

    let second = Hookvault::new()
        .database(&db)
        .settings(move |s| fast(s, vec![t]))
        .spawn();
    let r = Receiver::start_on(&port.to_string());
    let got = r.wait_for("dead-letter alert", |g| g.json()["event"] == "dead_letter");
    assert_eq!(got.json()["summary"], "1 new dead letter");
    std::thread::sleep(Duration::from_secs(2));
    let dead_alerts = r
        .accepted()
        .iter()
        .filter(|g| g.json()["event"] == "dead_letter")
        .count();
    assert_eq!(dead_alerts, 1, "the alert came {dead_alerts} times");
    assert!(
        r.accepted().iter().all(|g| g.json()["event"] != "relay"),
        "an alert target alerted about itself"
    );
    assert_no_secret(&second);
}

fn assert_no_secret_in_log(log: &str) {
    for line in log.lines() {
        assert!(
            !line.contains(SECRET),
            "a log line shows the secret: {line}"
        );
    }
}
