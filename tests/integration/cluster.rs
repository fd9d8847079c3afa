//! Three real `hookvault serve` processes on one PostgreSQL database. Posts are spread over
//! all three; one node is killed with SIGKILL while it holds leased work and is not restarted:
//! every acknowledged webhook still ends processed exactly once (one order each), the dead
//! node's leases are taken over within the lease time plus a few seconds, a dead letter
//! received on one node is retried from another, and the surviving nodes report the same
//! totals and the same node list.
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{order_body, pg_or_skip, Binary, Hookvault, Http, PgDb};

const LEASE_S: u64 = 2;
const WAIT: Duration = Duration::from_secs(30);
/// Concurrent senders: also the most requests the killed node can commit without answering.
const SENDERS: usize = 4;

fn node(db: &PgDb, id: &str) -> Binary {
    Hookvault::new()
        .postgres(db, id)
        .settings(|s| {
            s.queue.lease_s = LEASE_S;
            s.queue.workers = 4;
        })
        .spawn()
}

fn signal(child: &Binary, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Messages leased to `node` now, straight from the database.
fn leased_to(db: &mut postgres::Client, node: &str) -> Vec<i64> {
    db.query(
        "SELECT id FROM messages WHERE state = 'processing' AND lease_owner = $1 ORDER BY id",
        &[&node],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

const TOTALS: [&str; 8] = [
    "total_received",
    "total_processed",
    "total_failed",
    "total_requeued",
    "total_orders",
    "dead_letter_queue_size",
    "queue_size",
    "in_flight",
];

#[test]
fn three_nodes_survive_a_kill_9_with_every_acknowledged_webhook_processed_once() {
    let pg = pg_or_skip!();
    let mut nodes = [node(&pg, "n1"), node(&pg, "n2"), node(&pg, "n3")];
    let https: Vec<Http> = nodes.iter().map(|n| n.http.clone()).collect();
    let mut db = pg.client();

    // Four senders, each spreading its posts over the three nodes, until told to stop;
    // what was acknowledged (order number, id) is kept.
    let acked = Arc::new(Mutex::new(Vec::<(u64, i64)>::new()));
    let per_node = Arc::new(Mutex::new([0u32; 3]));
    let stop = Arc::new(AtomicBool::new(false));
    let n2_dead = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS as u64)
        .map(|t| {
            let (https, acked, per_node, stop, n2_dead) = (
                https.clone(),
                acked.clone(),
                per_node.clone(),
                stop.clone(),
                n2_dead.clone(),
            );
            std::thread::spawn(move || {
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let target = (n % 3) as usize;
                    if target == 1 && n2_dead.load(Ordering::Relaxed) {
                        continue;
                    }
                    let answer = https[target].try_post(
                        "/api/v2/webhooks/orders",
                        order_body(n).as_bytes(),
                        &[],
                    );
                    if let Ok(a) = answer {
                        if a.status == 200 {
                            acked
                                .lock()
                                .unwrap()
                                .push((n, a.json["id"].as_i64().unwrap()));
                            per_node.lock().unwrap()[target] += 1;
                        }
                    }
                }
            })
        })
        .collect();

    // Let the stream run, then freeze n2 at a moment it holds leases, and kill it.
    std::thread::sleep(Duration::from_secs(2));
    let mut held = Vec::new();
    for _ in 0..200 {
        signal(&nodes[1], "-STOP");
        held = leased_to(&mut db, "n2");
        if !held.is_empty() {
            break;
        }
        signal(&nodes[1], "-CONT");
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(!held.is_empty(), "n2 never held a lease while under load");
    n2_dead.store(true, Ordering::Relaxed);
    nodes[1].kill9();
    let killed_at = Instant::now();

    // The stream goes on to the survivors for a while, then stops.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }

    // The dead node's leased work is taken over once its lease runs out.
    let survivor = &https[0];
    for id in &held {
        survivor.wait_status(*id, "processed", Duration::from_secs(LEASE_S + 10));
    }
    let takeover = killed_at.elapsed();
    eprintln!(
        "lease takeover: {} messages leased to the killed node were processed {:.2}s after the kill (lease {LEASE_S}s)",
        held.len(),
        takeover.as_secs_f64()
    );
    assert!(
        takeover < Duration::from_secs(LEASE_S + 5),
        "takeover took {takeover:?}"
    );

    // Every acknowledged webhook: processed, exactly one order, no order twice.
    let acked = acked.lock().unwrap().clone();
    let spread = *per_node.lock().unwrap();
    eprintln!("acknowledged per node: {spread:?}, in all {}", acked.len());
    assert!(
        spread.iter().all(|&n| n >= 10),
        "load not spread: {spread:?}"
    );
    survivor.wait_drained(WAIT);
    // What is stored: every acknowledged webhook, plus at most one per sender whose request
    // the killed node committed but could not answer (no 2xx, so no promise was made; it is
    // processed like any other, once).
    let stored: usize = {
        let r = db.query_one("SELECT count(*) FROM messages", &[]).unwrap();
        r.get::<_, i64>(0) as usize
    };
    assert!(
        (acked.len()..=acked.len() + SENDERS).contains(&stored),
        "{stored} stored for {} acknowledged",
        acked.len()
    );
    // The other nodes' shares of the totals reach this node's stats within about a second.
    let until = Instant::now() + WAIT;
    let stats = loop {
        let s = survivor.stats();
        if s["total_processed"].as_u64() == Some(stored as u64) && s["queue_size"] == 0 {
            break s;
        }
        assert!(Instant::now() < until, "totals never reached {stored}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (left, orders): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT (SELECT count(*) FROM messages WHERE state <> 'processed'), \
                 (SELECT count(*) FROM orders)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(left, 0, "messages not processed");
    assert_eq!(orders as usize, stored, "one order per stored webhook");
    let ids: BTreeSet<i64> = acked.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), acked.len());
    for (n, id) in acked.iter().step_by(37) {
        let o = survivor.get(&format!("/api/v2/orders/TEST-{n}"));
        assert_eq!(o.status, 200, "order TEST-{n}: {}", o.text);
        assert_eq!(o.json["message_id"], *id);
    }
    // Every message was completed once: the processed total counts state changes, and a
    // second completion of the same message would be refused, not counted.
    assert_eq!(
        stats["total_processed"].as_u64().unwrap() as usize,
        stored,
        "{stats}"
    );
    assert_eq!(
        stats["total_orders"].as_u64().unwrap() as usize,
        stored,
        "{stats}"
    );

    // A dead letter received on n1, retried from n3.
    let dead = https[0].ingest("not json").json["id"].as_i64().unwrap();
    https[2].wait_status(dead, "dead", WAIT);
    let retry = https[2].post(
        &format!("/api/v2/webhooks/queue/dead-letters/{dead}/retry"),
        b"",
    );
    assert_eq!(retry.status, 200, "{}", retry.text);
    let seen = https[0].wait_status(dead, "dead", WAIT);
    assert_eq!(seen["actions"][0]["action"], "retry", "{seen}");
    assert_eq!(seen["attempts"], 1, "{seen}");

    // The survivors agree on the cluster's totals and on who is alive.
    std::thread::sleep(Duration::from_millis(6_000));
    let (a, b): (Value, Value) = (https[0].stats(), https[2].stats());
    for field in TOTALS {
        assert_eq!(a[field], b[field], "{field}: n1 {a} n3 {b}");
    }
    assert_eq!(a["total_requeued"], 1);
    assert_eq!(a["total_received"].as_u64().unwrap() as usize, stored + 1);
    let alive = |s: &Value| -> Vec<String> {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(alive(&a), ["n1", "n3"], "{a}");
    assert_eq!(alive(&b), ["n1", "n3"], "{b}");

    for n in [0, 2] {
        nodes[n].sigterm();
        let status = nodes[n].wait_exit(Duration::from_secs(20)).expect("stops");
        assert!(status.success(), "{}", nodes[n].stderr());
    }
}
