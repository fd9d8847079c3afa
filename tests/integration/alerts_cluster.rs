//! Alerts on three PostgreSQL nodes sharing one database, each configured with the same
//! target: one node leads (the advisory lock), so every event is told once, not three times;
//! when the leader stops, another node takes the lead.

use std::time::{Duration, Instant};

use hookvault::AlertKind;

use crate::alerts::{fast, target, Receiver};
use crate::harness::{pg_or_skip, Binary, Hookvault, PgDb};

fn node(db: &PgDb, id: &str, r: &Receiver) -> Binary {
    let t = target("ops", AlertKind::Webhook, r.addr, 60);
    Hookvault::new()
        .postgres(db, id)
        .settings(move |s| fast(s, vec![t]))
        .spawn()
}

fn leaders(nodes: &[&Binary]) -> usize {
    nodes
        .iter()
        .filter(|n| n.http.stats()["alerts"]["leader"] == true)
        .count()
}

#[test]
fn three_nodes_send_one_alert_per_event() {
    let db = pg_or_skip!();
    let r = Receiver::start();
    let a = node(&db, "a", &r);
    let b = node(&db, "b", &r);
    let c = node(&db, "c", &r);
    let until = Instant::now() + Duration::from_secs(20);
    while leaders(&[&a, &b, &c]) != 1 {
        assert!(Instant::now() < until, "no single leader");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, n) in [&a, &b, &c, &a, &b, &c].iter().enumerate() {
        assert_eq!(n.http.ingest(&format!("{{not json {i}")).status, 200);
    }
    let dead = r.wait_for("dead-letter alert", |g| g.json()["event"] == "dead_letter");
    // Every node's figures settle (the cluster totals refresh once a second), then a few
    // checks more: nothing else comes.
    std::thread::sleep(Duration::from_secs(5));
    let dead_alerts: Vec<String> = r
        .accepted()
        .iter()
        .filter(|g| g.json()["event"] == "dead_letter")
        .map(|g| g.json()["summary"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(dead_alerts.len(), 1, "{dead_alerts:?}");
    assert_eq!(dead.json()["summary"], "6 new dead letters");
    let degraded = r
        .accepted()
        .iter()
        .filter(|g| g.json()["summary"] == "hookvault is degraded")
        .count();
    assert_eq!(degraded, 1, "one status alert, not one per node");
    assert_eq!(leaders(&[&a, &b, &c]), 1);
}
