//! `hookvault migrate`: a SQLite database with orders, dead letters and operator actions,
//! copied into PostgreSQL and served from there, answers the API the same; a second run
//! copies nothing twice; new messages get ids past the copied ones.
use std::time::Duration;

use serde_json::Value;

use crate::harness::{order_body, pg_or_skip, run_cli, FakeDiscord, Hookvault, Http};

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

#[test]
fn owed_deliveries_survive_the_migration_and_are_sent_from_postgres() {
    const TOKEN: &str = "MiGrAtEtOkEn_0123456789abcdef";
    let pg = pg_or_skip!();
    let fake = FakeDiscord::start(None, 1);
    let relay = |s: &mut hookvault::Settings, base: String| {
        s.relay.discord_base = base;
        s.relay.discord_webhook_ids = vec!["701".into(), "702".into()];
        s.relay.max_attempts = 1_000_000;
    };
    let base = fake.base.clone();
    let mut sqlite = Hookvault::new().settings(move |s| relay(s, base)).start();
    // 701 fails (its deliveries stay owed, retried); 702 is gone (its target dies).
    fake.script("701", &vec![500; 100_000]);
    fake.delete("702");
    let post = |http: &crate::harness::Http, webhook: &str, n: usize| {
        let body = format!("{{\"content\":\"{n}\"}}");
        let a = http.post(&format!("/api/webhooks/{webhook}/{TOKEN}"), body.as_bytes());
        assert_eq!(a.status, 204, "{}", a.text);
    };
    for n in 0..3 {
        post(&sqlite.http, "701", n);
    }
    post(&sqlite.http, "702", 0);
    let until = std::time::Instant::now() + WAIT;
    loop {
        let d = sqlite.http.get("/api/v2/deliveries?state=dead").json;
        let tried_701 = fake.requests().iter().any(|r| r.webhook == "701");
        if d["count"] == 1 && tried_701 {
            break;
        }
        assert!(std::time::Instant::now() < until, "{d}");
        std::thread::sleep(Duration::from_millis(20));
    }
    sqlite.stop();
    let requests_702 = fake
        .requests()
        .iter()
        .filter(|r| r.webhook == "702")
        .count();
    assert_eq!(requests_702, 1);

    let (ok, out, err) = migrate(sqlite.database(), &pg.url);
    assert!(ok, "migrate failed: {out}\n{err}");
    assert!(err.contains("deliveries: 4/4 read, 4 copied"), "{err}");
    assert_eq!(copied(&out, "deliveries"), 4);
    assert!(copied(&out, "delivery_attempts") >= 2, "{out}");
    assert_eq!(copied(&out, "relay_targets"), 2);
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "{out}{err}");
    let (ok, again, err) = migrate(sqlite.database(), &pg.url);
    assert!(ok, "second migrate failed: {again}\n{err}");
    for table in ["deliveries", "delivery_attempts", "relay_targets"] {
        assert_eq!(copied(&again, table), 0, "{table}: {again}");
    }

    // Served from PostgreSQL with 701 back: the owed ones go, in order; 702 stays dead, and a
    // new delivery to it is a dead letter at once, with no request.
    fake.script("701", &[]);
    let base = fake.base.clone();
    let served = Hookvault::new()
        .postgres(&pg, "served")
        .settings(move |s| relay(s, base))
        .start();
    let got: Vec<Vec<u8>> = fake.wait_accepted("701", 3, WAIT);
    let order: Vec<String> = got
        .iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap()["content"].to_string())
        .collect();
    assert_eq!(order, ["\"0\"", "\"1\"", "\"2\""]);
    post(&served.http, "702", 1);
    let until = std::time::Instant::now() + WAIT;
    while served.http.get("/api/v2/deliveries?state=dead").json["count"] != 2 {
        assert!(std::time::Instant::now() < until);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let requests_702 = fake
        .requests()
        .iter()
        .filter(|r| r.webhook == "702")
        .count();
    assert_eq!(requests_702, 1, "a dead target was sent to");
    // The figures start from the copied rows and counters, then move with the commits.
    let until = std::time::Instant::now() + WAIT;
    loop {
        let relay = served.http.stats()["relay"].clone();
        let figures = ["pending", "delivered", "dead"].map(|f| relay[f].as_i64());
        if figures == [Some(0), Some(3), Some(2)] {
            break;
        }
        assert!(std::time::Instant::now() < until, "{relay}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
