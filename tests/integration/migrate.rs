//! `hookvault migrate`: a SQLite database with orders, dead letters and operator actions,
//! copied into PostgreSQL and served from there, answers the API the same; a second run
//! copies nothing twice; new messages get ids past the copied ones.
use std::time::Duration;

use serde_json::Value;

use crate::harness::{order_body, pg_or_skip, run_cli, Hookvault, Http};

const WAIT: Duration = Duration::from_secs(20);

/// Everything a client can read, as JSON, for comparing two servers.
fn answers(http: &Http, ids: &[i64]) -> Vec<(String, Value)> {
    let mut paths = vec![
        "/api/v2/webhooks/logs?limit=500".to_string(),
        "/api/v2/webhooks/logs?status=dead".to_string(),
        "/api/v2/webhooks/logs?status=discarded".to_string(),
        "/api/v2/webhooks/queue/dead-letters".to_string(),
        "/api/v2/orders?limit=500".to_string(),
        "/api/v2/orders/TEST-3".to_string(),
    ];
    paths.extend(ids.iter().map(|id| format!("/api/v2/webhooks/logs/{id}")));
    paths
        .into_iter()
        .map(|p| {
            let a = http.get(&p);
            assert_eq!(a.status, 200, "{p}: {}", a.text);
            (p, a.json)
        })
        .collect()
}

const TOTALS: [&str; 9] = [
    "total_received",
    "total_processed",
    "total_failed",
    "total_duplicates",
    "total_requeued",
    "total_discarded",
    "total_orders",
    "dead_letter_queue_size",
    "queue_size",
];

fn migrate(db: &std::path::Path, url: &str) -> (bool, String, String) {
    let from = format!("sqlite:{}", db.display());
    let out = run_cli(&["migrate", "--from", &from, "--to", url], &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn copied(stdout: &str, table: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(table))
        .unwrap_or_else(|| panic!("no line for {table}: {stdout}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[4], "ok", "{line}");
    cols[2].parse().unwrap()
}

#[test]
fn a_sqlite_database_served_from_postgres_answers_the_same() {
    let pg = pg_or_skip!();
    let mut sqlite = Hookvault::new().start();
    let http = sqlite.http.clone();
    let mut ids: Vec<i64> = (0..30)
        .map(|n| http.ingest(&order_body(n)).json["id"].as_i64().unwrap())
        .collect();
    ids.push(
        http.post_with(
            "/api/v2/webhooks/orders",
            order_body(3).as_bytes(),
            &[("Idempotency-Key", "again")],
        )
        .json["id"]
            .as_i64()
            .unwrap(),
    );
    http.post_with(
        "/api/v2/webhooks/orders",
        b"{}",
        &[("Idempotency-Key", "again")],
    );
    let junk: Vec<i64> = ["not json", "{\"content\":\"no order\"}", "[1,2"]
        .iter()
        .map(|b| http.ingest(b).json["id"].as_i64().unwrap())
        .collect();
    for id in &junk {
        http.wait_status(*id, "dead", WAIT);
    }
    // One discarded, one retried (it dies again): operator actions with their audit.
    assert_eq!(
        http.delete(&format!("/api/v2/webhooks/queue/dead-letters/{}", junk[0]))
            .status,
        200
    );
    let r = http.post(
        &format!("/api/v2/webhooks/queue/dead-letters/{}/retry", junk[1]),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    http.wait_drained(WAIT);
    http.wait_status(junk[1], "dead", WAIT);
    ids.extend(&junk);
    let before = answers(&http, &ids);
    let stats_before = http.stats();
    sqlite.stop();
    let db = sqlite.database().to_path_buf();

    let (ok, out, err) = migrate(&db, &pg.url);
    assert!(ok, "migrate failed: {out}\n{err}");
    assert!(err.contains("messages: 34/34 read, 34 copied"), "{err}");
    assert_eq!(copied(&out, "messages"), 34);
    assert_eq!(copied(&out, "orders"), 30);
    assert_eq!(copied(&out, "operator_actions"), 2);
    // Again: everything verified, nothing copied twice.
    let (ok, again, err) = migrate(&db, &pg.url);
    assert!(ok, "second migrate failed: {again}\n{err}");
    for table in [
        "messages",
        "bodies",
        "orders",
        "operator_actions",
        "counters",
    ] {
        assert_eq!(copied(&again, table), 0, "{table}: {again}");
    }

    let served = Hookvault::new().postgres(&pg, "served").start();
    let after = answers(&served.http, &ids);
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{path} differs after the migration");
    }
    let stats_after = served.http.stats();
    for field in TOTALS {
        assert_eq!(
            stats_before[field], stats_after[field],
            "{field}: {stats_after}"
        );
    }
    // The sequences were moved past the copied ids; the migrated data keeps working.
    let next = served.http.ingest(&order_body(99)).json["id"]
        .as_i64()
        .unwrap();
    assert_eq!(next, ids.iter().max().unwrap() + 1);
    served.http.wait_status(next, "processed", WAIT);
    let retried = served.http.post(
        &format!("/api/v2/webhooks/queue/dead-letters/{}/retry", junk[2]),
        b"",
    );
    assert_eq!(retried.status, 200, "{}", retried.text);
    served.http.wait_status(junk[2], "dead", WAIT);
    assert_eq!(served.http.stats()["total_orders"], 31);
}

#[test]
fn migrate_refuses_a_database_holding_other_messages() {
    let pg = pg_or_skip!();
    let mut a = Hookvault::new().start();
    a.http.ingest(&order_body(1));
    a.http.wait_drained(WAIT);
    a.stop();
    let served = Hookvault::new().postgres(&pg, "served").start();
    served.http.ingest("{\"other\":true}");
    let (ok, out, err) = migrate(a.database(), &pg.url);
    assert!(!ok, "{out}");
    assert!(err.contains("already holds a different message 1"), "{err}");
}
