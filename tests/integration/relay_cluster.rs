//! The relay on PostgreSQL with two nodes sharing the deliveries: every delivery is sent
//! once, in order (one node at a time on a target's queue), and a node killed mid-relay is
//! taken over once its target lease runs out.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{pg_or_skip, Binary, FakeDiscord, Hookvault, Limit, PgDb};

const TOKEN: &str = "ClusterToKeN_0123456789abcdef";

fn node(db: &PgDb, id: &str, fake: &FakeDiscord) -> Binary {
    let base = fake.base.clone();
    Hookvault::new()
        .postgres(db, id)
        .settings(move |s| {
            s.queue.lease_s = 2;
            s.relay.discord_base = base;
            s.relay.discord_webhook_ids = vec!["999".into()];
        })
        .spawn()
}

fn seq(body: &[u8]) -> usize {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["content"].as_str().unwrap().parse().unwrap()
}

#[test]
fn two_nodes_share_the_deliveries_and_a_killed_one_is_taken_over() {
    let pg = pg_or_skip!();
    let fake = FakeDiscord::start(
        Some(Limit {
            limit: 5,
            window: Duration::from_millis(300),
        }),
        2,
    );
    let mut a = node(&pg, "relay-a", &fake);
    let b = node(&pg, "relay-b", &fake);
    let n = 40;
    for i in 0..n {
        let http = if i % 2 == 0 { &a.http } else { &b.http };
        let body = format!(r#"{{"content":"{i}"}}"#);
        let answer = http.post(&format!("/api/webhooks/999/{TOKEN}"), body.as_bytes());
        assert_eq!(answer.status, 204, "{}", answer.text);
    }
    fake.wait_accepted("999", 8, Duration::from_secs(30));
    a.kill9();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<usize> = fake.accepted("999").iter().map(|b| seq(b)).collect();
        let distinct: BTreeSet<usize> = got.iter().copied().collect();
        if distinct.len() == n {
            // At most the one request the killed node had in flight is sent twice.
            assert!(got.len() <= n + 1, "duplicates: {got:?}");
            let mut once = got.clone();
            once.dedup();
            assert!(
                once.windows(2).all(|w| w[0] < w[1]),
                "two nodes interleaved one target's queue: {got:?}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "{} of {n} relayed after the kill: {got:?}",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = b.http.get("/api/v2/deliveries?state=delivered&limit=1000");
    assert_eq!(d.json["items"].as_array().unwrap().len(), n, "{}", d.text);
    assert!(!d.text.contains(TOKEN));
}

/// `node`'s owed figures for the target: the stats' total, the target's, and its gauge.
fn owed_figures(node: &Binary, label: &str) -> (i64, i64, String) {
    let stats = node.http.stats();
    let metrics = node.http.get("/metrics").text;
    let gauge = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "hookvault_deliveries_pending{{target=\"{label}\"}} "
            ))
        })
        .unwrap_or("0")
        .to_string();
    (
        stats["relay"]["pending"].as_i64().unwrap(),
        stats["relay"]["targets"][label]["pending"]
            .as_i64()
            .unwrap_or(0),
        gauge,
    )
}

fn wait_owed(nodes: &[&Binary], label: &str, n: i64) {
    let until = Instant::now() + Duration::from_secs(20);
    for node in nodes {
        loop {
            let got = owed_figures(node, label);
            if got == (n, n, n.to_string()) {
                break;
            }
            assert!(Instant::now() < until, "{got:?}, not {n} owed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn every_node_counts_the_deliveries_the_others_committed_and_sent() {
    let pg = pg_or_skip!();
    let fake = FakeDiscord::start(None, 1);
    let label = format!("{}/api/webhooks/999/***", fake.base);
    let a = node(&pg, "owed-a", &fake);
    let b = node(&pg, "owed-b", &fake);
    // Owed for now: every request fails, and is retried.
    fake.script("999", &vec![500; 100_000]);
    let n = 6;
    for i in 0..n {
        let body = format!(r#"{{"content":"{i}"}}"#);
        let answer = a
            .http
            .post(&format!("/api/webhooks/999/{TOKEN}"), body.as_bytes());
        assert_eq!(answer.status, 204, "{}", answer.text);
    }
    // Both nodes say what is owed, though only `a` committed them.
    wait_owed(&[&a, &b], &label, n);
    // Whichever node sends them, neither is left counting them once they are delivered.
    fake.script("999", &[]);
    fake.wait_accepted("999", n as usize, Duration::from_secs(30));
    wait_owed(&[&a, &b], &label, 0);
}

/// `node`'s `hookvault_deliveries_total{result}` sample.
fn results(node: &Binary, result: &str) -> u64 {
    let metrics = node.http.get("/metrics").text;
    let sample = format!("hookvault_deliveries_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&sample))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Waits until every node's stats say `delivered` and `dead` are `want`.
fn wait_delivered_and_dead(nodes: &[&Binary], want: (u64, u64)) {
    let until = Instant::now() + Duration::from_secs(20);
    for node in nodes {
        loop {
            let relay = node.http.stats()["relay"].clone();
            let got = (
                relay["delivered"].as_u64().unwrap(),
                relay["dead"].as_u64().unwrap(),
            );
            if got == want {
                break;
            }
            assert!(Instant::now() < until, "{got:?}, not {want:?}: {relay}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn every_node_shows_the_clusters_delivered_and_dead_and_each_death_is_counted_once() {
    let pg = pg_or_skip!();
    let fake = FakeDiscord::start(None, 1);
    let a = node(&pg, "figures-a", &fake);
    let b = node(&pg, "figures-b", &fake);
    let post = |node: &Binary, i: usize| {
        let body = format!(r#"{{"content":"{i}"}}"#);
        let answer = node
            .http
            .post(&format!("/api/webhooks/999/{TOKEN}"), body.as_bytes());
        assert_eq!(answer.status, 204, "{}", answer.text);
    };
    for i in 0..8 {
        post(if i % 2 == 0 { &a } else { &b }, i);
    }
    fake.wait_accepted("999", 8, Duration::from_secs(30));
    // Whichever node sent them, both say the cluster's figures.
    wait_delivered_and_dead(&[&a, &b], (8, 0));
    assert_eq!(results(&a, "success") + results(&b, "success"), 8);

    // The target goes: the one answered 404, the others taken with it or created dead, on
    // whichever node; each is counted by exactly one node's metric.
    fake.delete("999");
    for i in 8..14 {
        post(if i % 2 == 0 { &a } else { &b }, i);
    }
    wait_delivered_and_dead(&[&a, &b], (8, 6));
    assert_eq!(results(&a, "dead") + results(&b, "dead"), 6);

    // Retried on one node: the other's figures follow.
    fake.recreate("999");
    let answer = b.http.post("/api/v2/deliveries/retry-failed", b"");
    assert_eq!(answer.json["requeued"], 6, "{}", answer.text);
    fake.wait_accepted("999", 14, Duration::from_secs(30));
    wait_delivered_and_dead(&[&a, &b], (14, 0));
}
