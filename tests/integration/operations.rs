//! The operations API through real HTTP: dead letters, retries, discards, the audit log,
//! readiness, metrics, the OpenAPI document, admin auth and retention.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookvault::testing::store::RetentionSweeper;
use hookvault::testing::Effect;
use hookvault::testing::{Job, JsonCheckProcessor, ProcessError, Processor};
use serde_json::Value;

use crate::harness::{self, order_body, Answer, Hookvault, Http};

const INGEST: &str = "/api/v2/webhooks/orders";
const DEAD: &str = "/api/v2/webhooks/queue/dead-letters";
const RETRY_ALL: &str = "/api/v2/webhooks/queue/retry-failed";
const LOGS: &str = "/api/v2/webhooks/logs";
const WAIT: Duration = Duration::from_secs(15);

/// Fails every message permanently on its first attempt and succeeds after that, so each
/// message lands in dead letters once and is processed when retried.
#[derive(Default)]
struct FailFirst {
    seen: Mutex<HashSet<i64>>,
}

impl Processor for FailFirst {
    fn process(&self, job: &Job) -> Result<Effect, ProcessError> {
        if self.seen.lock().unwrap().insert(job.id) {
            Err(ProcessError::Permanent("first attempt fails".into()))
        } else {
            Ok(Effect::Nothing)
        }
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

fn ingest_id(http: &Http, body: &[u8]) -> i64 {
    let a = http.post(INGEST, body);
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["id"].as_i64().unwrap()
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["error"], code, "{}", a.text);
    assert!(a.json["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn dead_letters_page_retry_and_discard() {
    let s = Hookvault::new()
        .processor(Arc::new(FailFirst::default()))
        .start();
    let http = &s.http;
    let mut dead: Vec<i64> = (0..5)
        .map(|n| ingest_id(http, order_body(n).as_bytes()))
        .collect();
    dead.push(ingest_id(http, &[0xff, 0xfe, b'x']));
    for id in &dead {
        http.wait_status(*id, "dead", WAIT);
    }

    // The whole list, oldest first, with the fields docs/operations.md lists.
    let all = http.get(DEAD);
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(ids(&all.json), dead);
    assert_eq!(all.json["count"], 6);
    assert_eq!(all.json["total"], 6);
    assert_eq!(all.json["next_after_id"], Value::Null);
    let first = &all.json["items"][0];
    for field in [
        "id",
        "received_at",
        "attempts",
        "last_error",
        "failed_at",
        "payload",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["last_error"], "first attempt fails");
    assert!(first["payload"].as_str().unwrap().contains("TEST-0"));
    assert_eq!(first["payload_encoding"], "utf-8");
    let binary = &all.json["items"][5];
    assert_eq!(binary["payload"], "//54");
    assert_eq!(binary["payload_encoding"], "base64");

    // Paging by after_id: disjoint, ordered, the last page says so.
    let p1 = http.get(&format!("{DEAD}?limit=4"));
    assert_eq!(ids(&p1.json), dead[..4]);
    assert_eq!(p1.json["count"], 4);
    let next = p1.json["next_after_id"].as_i64().expect("a next page");
    assert_eq!(next, dead[3]);
    let p2 = http.get(&format!("{DEAD}?limit=4&after_id={next}"));
    assert_eq!(ids(&p2.json), dead[4..]);
    assert_eq!(p2.json["next_after_id"], Value::Null);
    // A limit outside 1..=1000 is refused on every paged list, as the OpenAPI document says.
    assert_eq!(http.get(&format!("{DEAD}?limit=1000")).status, 200);
    for list in [DEAD, "/api/v2/webhooks/logs", "/api/v2/orders"] {
        for limit in ["1001", "5000", "0"] {
            assert_error(
                &http.get(&format!("{list}?limit={limit}")),
                400,
                "bad_request",
            );
        }
    }
    assert_error(&http.get(&format!("{DEAD}?limit=0")), 400, "bad_request");
    assert_error(&http.get(&format!("{DEAD}?limit=ten")), 400, "bad_request");
    assert_error(&http.get(&format!("{DEAD}?after_id=x")), 400, "bad_request");
    // An empty value is a bad value too, not the parameter left out.
    for (list, cursor) in [
        (DEAD, "after_id"),
        ("/api/v2/webhooks/logs", "before_id"),
        ("/api/v2/orders", "before_id"),
    ] {
        for query in [
            "limit=".to_string(),
            format!("{cursor}="),
            format!("limit=2&{cursor}"),
        ] {
            let answer = http.get(&format!("{list}?{query}"));
            assert_error(&answer, 400, "bad_request");
            assert!(
                answer.json["message"]
                    .as_str()
                    .unwrap()
                    .contains("is empty"),
                "{}",
                answer.text
            );
        }
    }

    // Retry one: it is processed on its second attempt.
    let a = http.post(&format!("{DEAD}/{}/retry", dead[0]), b"");
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["requeued"], 1);
    assert_eq!(a.json["id"], dead[0]);
    let entry = http.wait_status(dead[0], "processed", WAIT);
    assert_eq!(
        entry["attempts"], 1,
        "a retry starts a fresh attempt budget"
    );
    let actions = entry["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{entry}");
    assert_eq!(actions[0]["action"], "retry");
    assert!(actions[0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    // Not dead any more: 404 `not_dead` naming the state (docs/operations.md). No such message: 404. Not an id: 400.
    let again = http.post(&format!("{DEAD}/{}/retry", dead[0]), b"");
    assert_error(&again, 404, "not_dead");
    assert!(again.json["message"]
        .as_str()
        .unwrap()
        .contains("processed"));
    assert_error(
        &http.post(&format!("{DEAD}/999999/retry"), b""),
        404,
        "not_found",
    );
    assert_error(
        &http.post(&format!("{DEAD}/abc/retry"), b""),
        400,
        "bad_request",
    );

    // Discard one: kept in the log as discarded, with who did it.
    let d = http.delete(&format!("{DEAD}/{}", dead[1]));
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.json["discarded"], 1);
    assert_eq!(d.json["id"], dead[1]);
    let entry = http.get(&format!("{LOGS}/{}", dead[1])).json;
    assert_eq!(entry["status"], "discarded");
    assert!(entry["note"]
        .as_str()
        .unwrap()
        .contains("discarded by 127.0.0.1"));
    assert_eq!(entry["actions"][0]["action"], "discard");
    let again = http.delete(&format!("{DEAD}/{}", dead[1]));
    assert_error(&again, 404, "not_dead");
    assert!(again.json["message"]
        .as_str()
        .unwrap()
        .contains("discarded"));
    assert_error(&http.delete(&format!("{DEAD}/999999")), 404, "not_found");
    assert_error(
        &http.delete(&format!("{DEAD}/{}", dead[0])),
        404,
        "not_dead",
    );
    assert_eq!(ids(&http.get(DEAD).json), dead[2..]);

    // Retry all: the other four come back and are processed.
    let all = http.post(RETRY_ALL, b"");
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.json["requeued"], 4);
    for id in &dead[2..] {
        http.wait_status(*id, "processed", WAIT);
    }
    assert_eq!(http.post(RETRY_ALL, b"").json["requeued"], 0);
    let page = http.get(DEAD).json;
    assert_eq!(page["count"], 0);
    assert_eq!(page["items"], serde_json::json!([]));

    let stats = http.wait_drained(WAIT);
    assert_eq!(stats["total_received"], 6);
    assert_eq!(stats["total_processed"], 5);
    assert_eq!(stats["total_requeued"], 5);
    assert_eq!(stats["total_discarded"], 1);
    assert_eq!(stats["dead_letter_queue_size"], 0);
}

#[test]
fn logs_page_newest_first_and_filter_by_status() {
    let s = Hookvault::new().start();
    let http = &s.http;
    let mut all: Vec<i64> = (0..7)
        .map(|n| ingest_id(http, order_body(100 + n).as_bytes()))
        .collect();
    let bad: Vec<i64> = (0..2).map(|_| ingest_id(http, b"{not json")).collect();
    all.extend(&bad);
    http.wait_drained(WAIT);
    all.reverse();

    let page = http.get(LOGS);
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(ids(&page.json), all);
    assert_eq!(page.json["next_before_id"], Value::Null);
    let item = &page.json["items"][0];
    for field in [
        "id",
        "received_at",
        "path",
        "remote_addr",
        "size",
        "status",
        "attempts",
        "last_error",
        "processed_at",
    ] {
        assert!(item.get(field).is_some(), "{field} missing in {item}");
    }
    assert_eq!(item["path"], INGEST);

    // Pages of 4: disjoint, newest first, together the whole log.
    let mut seen = Vec::new();
    let mut url = format!("{LOGS}?limit=4");
    loop {
        let p = http.get(&url).json;
        let got = ids(&p);
        assert!(got.len() <= 4);
        if let Some(last) = seen.last() {
            assert!(got.iter().all(|id| id < last), "{got:?} after {seen:?}");
        }
        seen.extend(got);
        match p["next_before_id"].as_i64() {
            Some(next) => url = format!("{LOGS}?limit=4&before_id={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all);

    let dead = http.get(&format!("{LOGS}?status=dead")).json;
    let mut want = bad.clone();
    want.reverse();
    assert_eq!(ids(&dead), want);
    assert!(dead["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "dead" && m["last_error"].as_str().is_some()));
    let processed = http.get(&format!("{LOGS}?status=processed&limit=3")).json;
    assert_eq!(ids(&processed), all[2..5]);
    assert!(processed["next_before_id"].is_i64());
    assert_eq!(
        ids(&http.get(&format!("{LOGS}?status=queued")).json),
        Vec::<i64>::new()
    );

    let bogus = http.get(&format!("{LOGS}?status=finished"));
    assert_error(&bogus, 400, "bad_request");
    let msg = bogus.json["message"].as_str().unwrap();
    for state in ["queued", "processing", "processed", "dead", "discarded"] {
        assert!(msg.contains(state), "{msg}");
    }
    // An empty value is not a state either (schemathesis sends `?status=`).
    assert_error(&http.get(&format!("{LOGS}?status=")), 400, "bad_request");
    assert_error(
        &http.get(&format!("{LOGS}?before_id=x")),
        400,
        "bad_request",
    );
    assert_error(&http.get(&format!("{LOGS}?limit=0")), 400, "bad_request");
    assert_error(&http.get(&format!("{LOGS}/999999")), 404, "not_found");
}

#[test]
fn health_readiness_and_received_rate() {
    let s = Hookvault::new().start();
    let http = &s.http;
    let h = http.get("/healthz");
    assert_eq!(h.status, 200);
    assert_eq!(h.json["status"], "ok");
    let r = http.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ready");

    for n in 0..5 {
        ingest_id(http, order_body(200 + n).as_bytes());
    }
    let stats = http.wait_drained(WAIT);
    let rate = stats["received_per_s"].as_f64().expect("received_per_s");
    assert!(rate > 0.0 && rate <= 5.0, "{stats}");
    assert_eq!(stats["status"], "healthy", "{stats}");
}

/// A strict reader of the Prometheus text format: every sample belongs to a family declared
/// by HELP and TYPE before it, names are valid, values are floats, histograms are cumulative
/// and end with `+Inf` equal to `_count`.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut help = HashSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let mut buckets: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP has text");
            assert!(valid_name(name) && !doc.is_empty(), "{line}");
            assert!(help.insert(name.to_string()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(valid_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice for {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?} is not a float"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, Some(l.strip_suffix('}').expect("labels close"))),
            None => (series, None),
        };
        assert!(valid_name(name), "{line}");
        if let Some(labels) = labels {
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').expect("label has a value");
                assert!(valid_name(k), "{line}");
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{line}"
                );
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("{name} has no TYPE before it"));
        if kind == "counter" {
            assert!(
                family.ends_with("_total"),
                "counter {family} ends in _total"
            );
            assert!(value >= 0.0, "{line}");
        }
        if name.ends_with("_bucket") {
            let le = labels
                .and_then(|l| l.strip_prefix("le=\""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("bucket has le");
            buckets
                .entry(family.to_string())
                .or_default()
                .push((le.to_string(), value));
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let b = &buckets[family];
        let mut last_le = f64::NEG_INFINITY;
        for w in b.windows(2) {
            assert!(
                w[0].1 <= w[1].1,
                "{family} buckets are not cumulative: {b:?}"
            );
        }
        for (le, _) in b {
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le is a float")
            };
            assert!(le > last_le, "{family} le not increasing");
            last_le = le;
        }
        let (last, inf) = b.last().unwrap();
        assert_eq!(last, "+Inf", "{family} ends with +Inf");
        assert_eq!(Some(inf), samples.get(&format!("{family}_count")));
        assert!(samples.contains_key(&format!("{family}_sum")));
    }
    samples
}

#[test]
fn metrics_are_valid_prometheus_text() {
    // The JSON-only processor keeps the figures independent of the order parser.
    let s = Hookvault::new()
        .processor(Arc::new(JsonCheckProcessor))
        .start();
    let http = &s.http;
    for n in 0..3 {
        ingest_id(http, order_body(300 + n).as_bytes());
    }
    ingest_id(http, b"{broken");
    http.post_with(INGEST, b"{}", &[("Idempotency-Key", "k")]);
    http.post_with(INGEST, b"{}", &[("Idempotency-Key", "k")]);
    http.wait_drained(WAIT);

    let m = http.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        m.header("content-type")
    );
    let samples = parse_metrics(&m.text);
    let get = |k: &str| *samples.get(k).unwrap_or_else(|| panic!("{k} missing"));
    assert_eq!(get("hookvault_webhooks_received_total"), 5.0);
    assert_eq!(get("hookvault_webhooks_processed_total"), 4.0);
    assert_eq!(get("hookvault_webhooks_dead_total"), 1.0);
    assert_eq!(get("hookvault_webhooks_duplicates_total"), 1.0);
    assert_eq!(get("hookvault_orders_created_total"), 0.0);
    assert_eq!(get("hookvault_webhooks_retried_total"), 0.0);
    assert_eq!(
        get("hookvault_webhooks_rejected_total{reason=\"backlog_full\"}"),
        0.0
    );
    assert_eq!(get("hookvault_queue_size"), 0.0);
    assert_eq!(get("hookvault_dead_letters"), 1.0);
    assert_eq!(get("hookvault_workers_configured"), 4.0);
    assert_eq!(get("hookvault_workers_running"), 4.0);
    assert_eq!(get("hookvault_ready"), 1.0);
    assert_eq!(get("hookvault_ack_latency_seconds_count"), 6.0);
    assert_eq!(get("hookvault_processing_seconds_count"), 5.0);
    assert!(get("hookvault_commit_batch_size_count") >= 1.0);
    assert!(get("hookvault_db_size_bytes") > 0.0);
    for name in [
        "hookvault_in_flight",
        "hookvault_channel_length",
        "hookvault_wal_size_bytes",
        "hookvault_uptime_seconds",
        "hookvault_received_per_second",
    ] {
        get(name);
    }
}

#[test]
fn openapi_describes_exactly_the_routes_and_docs_are_self_contained() {
    let s = Hookvault::new().start();
    let http = &s.http;
    let doc = http.get("/openapi.json");
    assert_eq!(doc.status, 200);
    assert!(doc
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let doc = doc.json;
    assert_eq!(doc["openapi"], "3.1.0");

    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            described.insert((method.to_ascii_uppercase(), path.clone()));
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            assert!(op["operationId"].is_string());
        }
    }
    // The route table, and the ingest path of each configured source (here the built-in one).
    let mut routes: BTreeSet<(String, String)> = hookvault::testing::api::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    routes.insert(("POST".into(), "/api/v2/webhooks/orders".into()));
    assert_eq!(described, routes);

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["adminBearer"]["scheme"], "bearer");
    assert_eq!(schemes["ingestTokenQuery"]["in"], "query");
    assert_eq!(schemes["ingestTokenHeader"]["name"], "X-Webhook-Token");
    let schemas = &doc["components"]["schemas"];
    for field in ["error", "message"] {
        assert!(schemas["Error"]["properties"][field].is_object());
    }
    for field in [
        "status",
        "queue_size",
        "queue_size_peak",
        "total_received",
        "total_processed",
        "total_failed",
        "dead_letter_queue_size",
        "workers_running",
        "workers_total",
        "avg_processing_time_ms",
        "is_running",
        "success_rate",
        "received_per_s",
    ] {
        assert!(
            schemas["Stats"]["properties"][field].is_object(),
            "Stats.{field}"
        );
    }
    // Every $ref points at something that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local ref");
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
    let ingest = &doc["paths"][INGEST]["post"];
    // The ingest body is described as bytes: whatever is posted is stored (see openapi.rs).
    assert_eq!(
        ingest["requestBody"]["content"]["application/octet-stream"]["schema"]["format"], "binary",
        "{ingest}"
    );

    let page = http.get("/docs");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text.to_ascii_lowercase();
    assert!(html.contains("openapi.json"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script src"));
    // The only <link> is the favicon, inline as a data: URL.
    for link in html.split("<link").skip(1) {
        assert!(
            link.trim_start().starts_with(r#"rel="icon" href="data:"#),
            "a <link> that loads something: <link{}",
            &link[..link.len().min(80)]
        );
    }
    assert!(!html.contains("@import") && !html.contains("url("));
    // The document itself rides in the page, so a saved copy works offline.
    let start = page
        .text
        .find(r#"id="openapi-spec">"#)
        .expect("embedded document")
        + 18;
    let end = start + page.text[start..].find("</script>").unwrap();
    let embedded: Value = serde_json::from_str(&page.text[start..end]).unwrap();
    assert_eq!(embedded, doc);
    // It must come before the page's script, which reads it while the page is parsed.
    assert!(start < page.text.find("<script>").expect("the page's script"));
}

const ADMIN_GETS: &[&str] = &[
    "/api/v2/webhooks/queue/stats",
    DEAD,
    LOGS,
    "/api/v2/webhooks/logs/1",
    "/metrics",
    "/openapi.json",
    "/docs",
];
/// Only the health endpoints are open to all (docs/operations.md, "Access").
const OPEN_GETS: &[&str] = &["/healthz", "/readyz"];

#[test]
fn admin_token_guards_admin_endpoints_only() {
    let s = Hookvault::new()
        .settings(|s| s.server.admin_token = Some("s3cret-token".into()))
        .start();
    let http = &s.http;
    ingest_id(http, order_body(400).as_bytes());
    let good = [("Authorization", "Bearer s3cret-token")];
    for path in ADMIN_GETS {
        let none = http.get(path);
        assert_error(&none, 401, "unauthorized");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"), "{path}");
        let wrong = http.get_with(path, &[("Authorization", "Bearer nope")]);
        assert_error(&wrong, 401, "unauthorized");
        let basic = http.get_with(path, &[("Authorization", "Basic czNjcmV0")]);
        assert_error(&basic, 401, "unauthorized");
        let ok = http.get_with(path, &good);
        assert_eq!(ok.status, 200, "{path}: {}", ok.text);
    }
    assert_error(&http.post(RETRY_ALL, b""), 401, "unauthorized");
    assert_eq!(http.post_with(RETRY_ALL, b"", &good).status, 200);
    assert_error(
        &http.post(&format!("{DEAD}/1/retry"), b""),
        401,
        "unauthorized",
    );
    assert_error(&http.delete(&format!("{DEAD}/1")), 401, "unauthorized");
    for path in OPEN_GETS {
        assert_eq!(http.get(path).status, 200, "{path}");
    }
}

#[test]
fn without_a_token_loopback_clients_are_admins() {
    let s = Hookvault::new().start();
    for path in ADMIN_GETS.iter().chain(OPEN_GETS) {
        let path = if *path == "/api/v2/webhooks/logs/1" {
            "/api/v2/webhooks/logs"
        } else {
            path
        };
        assert_eq!(s.http.get(path).status, 200, "{path}");
    }
}

#[test]
fn without_a_token_other_clients_get_403_but_health_stays_open() {
    let Some(ns) = harness::remote_client() else {
        return;
    };
    let listen = std::net::SocketAddr::new(ns.host_ip, 0).to_string();
    let s = Hookvault::new()
        .settings(move |s| {
            s.server.listen = listen;
            s.server.edge = "gate".into();
        })
        .start();
    let remote = Http::new(s.service().http_addr());
    ns.run(|| {
        for path in ADMIN_GETS {
            assert_error(&remote.get(path), 403, "forbidden");
        }
        for path in OPEN_GETS {
            assert_eq!(remote.get(path).status, 200, "{path}");
        }
        // Ingest is not an admin endpoint.
        assert_eq!(remote.ingest(&order_body(500)).status, 200);
    });
}

#[test]
fn retention_removes_old_processed_messages_only() {
    let s = Hookvault::new().start();
    let http = &s.http;
    let processed: Vec<i64> = (0..3)
        .map(|n| ingest_id(http, order_body(600 + n).as_bytes()))
        .collect();
    let dead = ingest_id(http, b"not json");
    let before = http.wait_drained(WAIT);
    let writer = s.service().writer();
    let now = hookvault::testing::now_ms();
    const DAY: i64 = 86_400_000;

    // Nothing is old enough yet; 0 days means retention is off.
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, now)
            .unwrap()
            .messages,
        0
    );
    assert_eq!(
        RetentionSweeper::run_once(&writer, 0, now + 365 * DAY)
            .unwrap()
            .messages,
        0
    );
    assert_eq!(ids(&http.get(LOGS).json).len(), 4);

    // 31 days later the processed ones go; the dead letter stays.
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, now + 31 * DAY)
            .unwrap()
            .messages,
        3
    );
    assert_eq!(ids(&http.get(LOGS).json), vec![dead]);
    for id in processed {
        assert_error(&http.get(&format!("{LOGS}/{id}")), 404, "not_found");
    }
    assert_eq!(ids(&http.get(DEAD).json), vec![dead]);
    let after = http.stats();
    for field in [
        "total_received",
        "total_processed",
        "total_failed",
        "total_orders",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["dead_letter_queue_size"], 1);
    let m = parse_metrics(&http.get("/metrics").text);
    assert_eq!(m["hookvault_webhooks_purged_total"], 3.0);
}

#[test]
fn retention_sweeps_in_batches_until_a_short_one() {
    let s = Hookvault::new()
        .settings(|s| s.queue.workers = 2)
        .processor(Arc::new(JsonCheckProcessor))
        .start();
    let http = &s.http;
    let n = 2 * hookvault::testing::store::RETENTION_BATCH as usize + 7;
    std::thread::scope(|scope| {
        for t in 0..8 {
            scope.spawn(move || {
                for _ in (t..n).step_by(8) {
                    ingest_id(http, b"{}");
                }
            });
        }
    });
    http.wait_drained(Duration::from_secs(60));
    let writer = s.service().writer();
    let later = hookvault::testing::now_ms() + 2 * 86_400_000;
    assert_eq!(
        RetentionSweeper::run_once(&writer, 1, later)
            .unwrap()
            .messages,
        n as u64
    );
    assert_eq!(ids(&http.get(LOGS).json).len(), 0);
    assert_eq!(http.stats()["total_received"], n as u64);
}

#[test]
fn the_sweeper_stops_when_shutdown_begins() {
    let s = Hookvault::new().start();
    let writer = s.service().writer();
    let sweeper = RetentionSweeper::start_with(
        writer,
        30,
        Duration::from_millis(10),
        Duration::from_secs(3600),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let left_behind = sweeper.stop(started + Duration::from_secs(10));
    assert_eq!(left_behind, 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}
