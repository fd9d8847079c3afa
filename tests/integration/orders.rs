//! Orders end to end: every fixture through the real server, re-sent orders stored once, the
//! orders API and CSV, and `hookvault reprocess` turning a dead letter into an order.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{command, order_body, run_cli, webhook_fixtures, Hookvault};

#[test]
fn every_fixture_yields_its_expected_order_or_dead_letter() {
    let s = Hookvault::new().start();
    let sent: Vec<(String, i64, Value)> = webhook_fixtures()
        .into_iter()
        .map(|fixture| {
            let (name, body, expected) = (fixture.name, fixture.body, fixture.expected);
            let a = s.http.post("/api/v2/webhooks/orders", &body);
            assert_eq!(a.status, 200, "{name}: {}", a.text);
            (name, a.json["id"].as_i64().unwrap(), expected)
        })
        .collect();
    s.http.wait_drained(Duration::from_secs(20));
    for (name, id, expected) in sent {
        let entry = s.http.get(&format!("/api/v2/webhooks/logs/{id}")).json;
        if let Some(why) = expected.get("invalid").and_then(Value::as_str) {
            assert_eq!(entry["status"], "dead", "{name}: {entry}");
            assert_eq!(
                entry["attempts"], 1,
                "{name}: permanent errors are not retried"
            );
            let err = entry["last_error"].as_str().unwrap();
            let named = if why.starts_with("not valid JSON") {
                "invalid JSON"
            } else {
                "no order number"
            };
            assert!(err.contains(named), "{name}: {err}");
            continue;
        }
        assert_eq!(entry["status"], "processed", "{name}: {entry}");
        let number = expected["order_number"].as_str().unwrap();
        let path = format!("/api/v2/orders/{}", number.replace('#', "%23"));
        let order = s.http.get(&path);
        assert_eq!(order.status, 200, "{name}: {}", order.text);
        for (key, want) in expected.as_object().unwrap() {
            assert_eq!(
                &order.json[key], want,
                "{name}: field {key} in {}",
                order.json
            );
        }
        assert_eq!(order.json["message_id"], id);
    }
}

#[test]
fn a_resent_order_is_stored_once() {
    let s = Hookvault::new().start();
    let first = s.http.ingest(&order_body(42)).json["id"].as_i64().unwrap();
    let second = s.http.ingest(&order_body(42)).json["id"].as_i64().unwrap();
    assert_ne!(first, second, "no idempotency key: two messages");
    s.http
        .wait_status(first, "processed", Duration::from_secs(10));
    let entry = s
        .http
        .wait_status(second, "processed", Duration::from_secs(10));
    assert!(
        entry["note"]
            .as_str()
            .unwrap()
            .contains(&format!("already stored from message {first}")),
        "{entry}"
    );
    let list = s.http.get("/api/v2/orders").json;
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["items"][0]["message_id"], first);
    assert_eq!(s.http.stats()["total_orders"], 1);
}

#[test]
fn orders_list_pages_searches_and_exports_csv() {
    let s = Hookvault::new().start();
    for n in 1..=7 {
        s.http.ingest(&order_body(n));
    }
    s.http.wait_drained(Duration::from_secs(10));
    let page1 = s.http.get("/api/v2/orders?limit=3").json;
    let numbers = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_number"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        numbers(&page1),
        ["TEST-7", "TEST-6", "TEST-5"],
        "newest first"
    );
    let next = page1["next_before_id"].as_i64().unwrap();
    let page2 = s
        .http
        .get(&format!("/api/v2/orders?limit=3&before_id={next}"))
        .json;
    assert_eq!(numbers(&page2), ["TEST-4", "TEST-3", "TEST-2"]);
    let last = s
        .http
        .get(&format!(
            "/api/v2/orders?limit=3&before_id={}",
            page2["next_before_id"]
        ))
        .json;
    assert_eq!(numbers(&last), ["TEST-1"]);
    assert!(last["next_before_id"].is_null());

    let found = s.http.get("/api/v2/orders?q=test3%40example").json;
    assert_eq!(numbers(&found), ["TEST-3"]);
    assert_eq!(s.http.get("/api/v2/orders?limit=zero").status, 400);
    let missing = s.http.get("/api/v2/orders/NOPE-1");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"], "not_found");

    let csv = s.http.get("/api/v2/orders.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("Content-Type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 8, "{}", csv.text);
    assert!(lines[0].starts_with("id,created_at,order_number,product,amount,currency"));
    assert!(
        lines[1].contains(",TEST-7,Test Product 7,99.99,USD,9999,test7@example.com,"),
        "{}",
        lines[1]
    );
}

#[test]
fn csv_export_streams_more_than_one_page() {
    let s = Hookvault::new().settings(|c| c.queue.workers = 2).start();
    for n in 0..1203 {
        s.http.ingest(&order_body(n));
    }
    s.http.wait_drained(Duration::from_secs(60));
    let csv = s.http.get("/api/v2/orders.csv");
    assert_eq!(csv.text.lines().count(), 1204);
    let csv = s.http.get("/api/v2/orders.csv?q=TEST-120");
    // TEST-120 and TEST-1200..1202
    assert_eq!(csv.text.lines().count(), 5, "{}", csv.text);
}

#[test]
fn reprocess_after_adding_an_alias_turns_a_dead_letter_into_an_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let body = r#"{"embeds":[{"description":"Bestellnummer: DE-777\nProdukt: Gazelle\nPrice: 89,95 €\nEmail: k@example.de"}]}"#;
    let mut server = Hookvault::new().database(&db).spawn();
    let id = server.http.ingest(body).json["id"].as_i64().unwrap();
    let ok = server.http.ingest(&order_body(5)).json["id"]
        .as_i64()
        .unwrap();
    let entry = server.http.wait_status(id, "dead", Duration::from_secs(10));
    assert!(entry["last_error"]
        .as_str()
        .unwrap()
        .contains("no order number"));
    server
        .http
        .wait_status(ok, "processed", Duration::from_secs(10));
    server.sigterm();
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(15))
            .and_then(|s| s.code()),
        Some(0)
    );

    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[orders.aliases]\norder_number = [\"Bestellnummer\"]\nproduct = [\"Produkt\"]\n",
    )
    .unwrap();
    let reprocess = || {
        let out = command()
            .args(["reprocess", "--config"])
            .arg(&config)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = reprocess();
    assert!(
        first.contains("examined 2")
            && first.contains("new orders 1")
            && first.contains("revived dead letters 1"),
        "{first}"
    );
    assert!(
        first.contains("unchanged 1") && first.contains("still failing 0"),
        "{first}"
    );
    let second = reprocess();
    assert!(
        second.contains("new orders 0")
            && second.contains("changed 0")
            && second.contains("unchanged 2"),
        "{second}"
    );

    let server = Hookvault::new().database(&db).spawn();
    let order = server.http.get("/api/v2/orders/DE-777");
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.json["product"], "Gazelle");
    assert_eq!(order.json["amount_cents"], 8995);
    assert_eq!(order.json["currency"], "EUR");
    assert_eq!(server.http.status_of(id), "processed");
    let stats = server.http.stats();
    assert_eq!(stats["dead_letter_queue_size"], 0, "{stats}");
    assert_eq!(stats["total_orders"], 2, "{stats}");
}

#[test]
fn reprocess_rejects_bad_arguments_clearly() {
    let run = |args: &[&str]| run_cli(args, &[]);
    let out = run(&[
        "reprocess",
        "--status",
        "queued",
        "--db",
        "/nonexistent/x.db",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("processed or dead"));
    let out = run(&[
        "reprocess",
        "--since",
        "last tuesday",
        "--db",
        "/nonexistent/x.db",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["reprocess", "--db", "/nonexistent/x.db"]);
    assert_eq!(out.status.code(), Some(74));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}
