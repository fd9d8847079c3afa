//! Drives the in-process baseline server over real HTTP. No speed assertions: only counts.

use std::time::Duration;

use hookvault_loadtest::{run, BaselineServer, Error, Load, Options};

fn quiet(mut o: Options) -> Options {
    o.verify = false;
    o.progress = false;
    o
}

#[test]
fn closed_loop_against_the_baseline() {
    let server = BaselineServer::start("127.0.0.1:0", 2).unwrap();
    let opts = quiet(Options::closed(&server.url(), 200, 8));
    let report = run(&opts).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.sent, 200);
    assert_eq!(report.ok_2xx, 200);
    assert_eq!(report.queued, 200);
    assert_eq!(report.transport_errors, 0);
    assert!(report.other_status.is_empty());
    assert_eq!(report.latency.count, 200);
    assert!(report.latency.max_ms >= report.latency.p50_ms);
    assert!(report.schedule.is_none());
    assert!(report.verification.is_none() && !report.verified && report.drain_secs.is_none());
    assert_eq!(server.served(), 200);
    assert_eq!(report.mode, "closed");
}

#[test]
fn open_loop_against_the_baseline() {
    let server = BaselineServer::start("127.0.0.1:0", 2).unwrap();
    let opts = quiet(Options::open(&server.url(), 200.0, Duration::from_secs(1)));
    assert!(matches!(opts.load, Load::Open(s) if s.total() == 200));
    let report = run(&opts).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.sent, 200);
    assert_eq!(report.ok_2xx, 200);
    assert_eq!(report.transport_errors, 0);
    assert_eq!(report.latency.count, 200);
    let sch = report
        .schedule
        .as_ref()
        .expect("open loop reports schedule lag");
    assert_eq!(sch.lag.count, 200);
    assert!((sch.target_rate - 200.0).abs() < 1e-9);
    // the schedule paces the run: the last request is due at 995 ms
    assert!(report.send_secs >= 0.99, "{}", report.send_secs);
    assert_eq!(server.served(), 200);

    let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(v["sent"], 200);
    assert_eq!(v["mode"], "open");
}

#[test]
fn verification_against_the_baseline_says_to_pass_no_verify() {
    let server = BaselineServer::start("127.0.0.1:0", 1).unwrap();
    let mut opts = Options::closed(&server.url(), 10, 2);
    opts.progress = false;
    let err = run(&opts).unwrap_err();
    assert!(matches!(err, Error::Stats(_)));
    assert!(err.to_string().contains("--no-verify"), "{err}");
    assert_eq!(server.served(), 1, "only the stats probe; nothing was sent");
}

#[test]
fn nothing_listening_is_a_failed_run_not_a_hang() {
    // bind and drop to get a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = quiet(Options::closed(&format!("http://127.0.0.1:{port}"), 5, 2));
    opts.request_timeout = Duration::from_secs(5);
    let report = run(&opts).unwrap();
    assert!(!report.ok);
    assert_eq!(report.transport_errors, 5);
    assert!(
        report.failures[0].starts_with("5 transport errors"),
        "{:?}",
        report.failures
    );
}
