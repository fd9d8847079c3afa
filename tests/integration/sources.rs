//! Sources and signatures against the real binary: every scheme with the published test
//! vectors and with bodies signed by `hookvault sign`, and each way a request is refused
//! (wrong body or secret, old or future timestamps, missing headers, a signature list whose
//! second entry matches, rotation, hex where base64 is configured), as one table.

use std::path::{Path, PathBuf};

use hookvault::Settings;
use hookvault::SourceSettings;
use serde_json::Value;

use crate::harness::{require, run_cli, Hookvault};

const STD_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const STD_TS: &str = "1649367553";
const STD_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const STD_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

/// One source per scheme (and per case that needs its own secrets).
pub(crate) const SOURCES: &str = r#"
[[sources]]
name = "std"
verify = "standard-webhooks"
secrets = ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]

[[sources]]
name = "stdvec"
verify = "standard-webhooks"
secrets = ["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]
tolerance_s = 10000000000

[[sources]]
name = "rot"
verify = "standard-webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]

[[sources]]
name = "newonly"
verify = "standard-webhooks"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]

[[sources]]
name = "gh"
verify = "github"
secrets = ["It's a Secret to Everybody"]

[[sources]]
name = "stripe"
verify = "stripe"
secrets = ["whsec_stripe_test"]

[[sources]]
name = "shop"
verify = "shopify"
secrets = ["shpss_test"]

[[sources]]
name = "hmachex"
verify = "hmac-sha256"
secrets = ["k"]
signature_header = "X-Sig"
signature_prefix = "sha256="

[[sources]]
name = "hmacb64"
verify = "hmac-sha256"
secrets = ["k"]
signature_header = "X-Sig"
signature_encoding = "base64"
signature_prefix = "sha256="

[[sources]]
name = "tok"
token = "tk"

[[sources]]
name = "orders"
"#;

pub(crate) fn source_tables() -> Vec<SourceSettings> {
    #[derive(serde::Deserialize)]
    struct File {
        sources: Vec<SourceSettings>,
    }
    toml::from_str::<File>(SOURCES).unwrap().sources
}

/// A config file holding these sources, for `hookvault sign`.
fn config_file(dir: &Path) -> PathBuf {
    let settings = Settings {
        sources: source_tables(),
        ..Settings::default()
    };
    let path = dir.join("sign.toml");
    std::fs::write(&path, toml::to_string(&settings).unwrap()).unwrap();
    path
}

/// `hookvault sign` for `body`: its `Name:value` lines as pairs.
fn sign(config: &Path, source: &str, body: &str, extra: &[&str]) -> Vec<(String, String)> {
    let file = config.with_file_name(format!("body-{source}.json"));
    std::fs::write(&file, body).unwrap();
    let mut args = vec![
        "sign",
        "--config",
        config.to_str().unwrap(),
        "--source",
        source,
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_cli(&args, &[]);
    assert!(
        out.status.success(),
        "sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(':').expect("Name:value");
            (n.to_string(), v.to_string())
        })
        .collect()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn path(source: &str) -> String {
    format!("/api/v2/webhooks/in/{source}")
}

/// `queued`, `duplicate`, or the refusal's error code, with the status it came with.
fn outcome(answer: &crate::harness::Answer) -> (u16, String) {
    let word = answer.json["status"]
        .as_str()
        .or(answer.json["error"].as_str())
        .unwrap_or("?")
        .to_string();
    (answer.status, word)
}

#[test]
fn every_scheme_passes_its_vectors_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let server = Hookvault::new()
        .settings(|s| s.sources = source_tables())
        .spawn();
    let now = now_s();
    let past = (now - 1000).to_string();
    let future = (now + 1000).to_string();

    let signed_std = sign(&config, "std", STD_BODY, &[]);
    let std_sig = signed_std[2].1.clone();
    let std_id = signed_std[0].1.clone();
    let std_ts = signed_std[1].1.clone();
    // A junk first entry, then the real signature.
    let second_only = format!("v1,{}= {std_sig}", "A".repeat(43));
    let hex_sig = sign(&config, "hmachex", "payload", &[])[0].1.clone();

    type Row<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        &'a str,
        u16,
        &'a str,
    );
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let std_with = |sig: &str| {
        h(&[
            ("webhook-id", &std_id),
            ("webhook-timestamp", &std_ts),
            ("webhook-signature", sig),
        ])
    };
    let table: Vec<Row> = vec![
        // The published vectors.
        (
            "standard webhooks vector",
            "stdvec",
            h(&[
                ("webhook-id", STD_ID),
                ("webhook-timestamp", STD_TS),
                ("webhook-signature", STD_SIG),
            ]),
            STD_BODY,
            200,
            "queued",
        ),
        (
            "svix header names, same delivery id",
            "stdvec",
            h(&[
                ("svix-id", STD_ID),
                ("svix-timestamp", STD_TS),
                ("svix-signature", STD_SIG),
            ]),
            STD_BODY,
            200,
            "duplicate",
        ),
        (
            "github documented example",
            "gh",
            h(&[
                ("X-Hub-Signature-256", GH_SIG),
                ("X-GitHub-Delivery", "gh-1"),
            ]),
            "Hello, World!",
            200,
            "queued",
        ),
        (
            "github redelivery: same X-GitHub-Delivery",
            "gh",
            h(&[
                ("X-Hub-Signature-256", GH_SIG),
                ("X-GitHub-Delivery", "gh-1"),
            ]),
            "Hello, World!",
            200,
            "duplicate",
        ),
        // Signed by hookvault sign.
        (
            "standard webhooks, signed now",
            "std",
            signed_std.clone(),
            STD_BODY,
            200,
            "queued",
        ),
        (
            "github, signed",
            "gh",
            sign(&config, "gh", "{\"a\":1}", &[]),
            "{\"a\":1}",
            200,
            "queued",
        ),
        (
            "stripe, signed",
            "stripe",
            sign(&config, "stripe", "{\"id\":\"evt_1\"}", &[]),
            "{\"id\":\"evt_1\"}",
            200,
            "queued",
        ),
        (
            "stripe, same event id again",
            "stripe",
            sign(&config, "stripe", "{\"id\":\"evt_1\"}", &[]),
            "{\"id\":\"evt_1\"}",
            200,
            "duplicate",
        ),
        (
            "shopify, signed",
            "shop",
            sign(&config, "shop", "{\"s\":1}", &["--id", "shop-1"]),
            "{\"s\":1}",
            200,
            "queued",
        ),
        (
            "hmac-sha256 hex, signed",
            "hmachex",
            h(&[("X-Sig", &hex_sig)]),
            "payload",
            200,
            "queued",
        ),
        (
            "hmac-sha256 base64, signed",
            "hmacb64",
            sign(&config, "hmacb64", "p2", &[]),
            "p2",
            200,
            "queued",
        ),
        // Refusals.
        (
            "wrong body",
            "gh",
            h(&[("X-Hub-Signature-256", GH_SIG)]),
            "Hello, World?",
            401,
            "signature_invalid",
        ),
        (
            "wrong secret",
            "newonly",
            signed_std.clone(),
            STD_BODY,
            401,
            "signature_invalid",
        ),
        (
            "rotation: the old secret second",
            "rot",
            sign(&config, "std", "{\"r\":1}", &["--id", "rot-1"]),
            "{\"r\":1}",
            200,
            "queued",
        ),
        (
            "list: the second of two matches",
            "std",
            std_with(&second_only),
            STD_BODY,
            200,
            "duplicate",
        ),
        (
            "list: neither matches",
            "std",
            std_with(&format!("v1,{}= v1,{}=", "B".repeat(43), "C".repeat(43))),
            STD_BODY,
            401,
            "signature_invalid",
        ),
        (
            "expired timestamp",
            "std",
            sign(&config, "std", STD_BODY, &["--timestamp", &past]),
            STD_BODY,
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "future timestamp",
            "std",
            sign(&config, "std", STD_BODY, &["--timestamp", &future]),
            STD_BODY,
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "stripe expired",
            "stripe",
            sign(&config, "stripe", "{}", &["--timestamp", &past]),
            "{}",
            401,
            "timestamp_out_of_tolerance",
        ),
        (
            "standard webhooks, headers missing",
            "std",
            h(&[("webhook-id", "x")]),
            STD_BODY,
            401,
            "signature_missing",
        ),
        (
            "github, header missing",
            "gh",
            vec![],
            "{}",
            401,
            "signature_missing",
        ),
        (
            "stripe, header missing",
            "stripe",
            vec![],
            "{}",
            401,
            "signature_missing",
        ),
        (
            "shopify, header missing",
            "shop",
            vec![],
            "{}",
            401,
            "signature_missing",
        ),
        (
            "hmac, header missing",
            "hmacb64",
            vec![],
            "{}",
            401,
            "signature_missing",
        ),
        (
            "hex where base64 is configured",
            "hmacb64",
            h(&[("X-Sig", &hex_sig)]),
            "payload",
            401,
            "signature_invalid",
        ),
        ("token missing", "tok", vec![], "{}", 401, "token_invalid"),
        (
            "token wrong",
            "tok",
            h(&[("X-Webhook-Token", "nope")]),
            "{}",
            401,
            "token_invalid",
        ),
        (
            "token right",
            "tok",
            h(&[("X-Webhook-Token", "tk")]),
            "{}",
            200,
            "queued",
        ),
    ];
    let mut failures = Vec::new();
    let mut stored = 0;
    for (what, source, headers, body, status, word) in &table {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let a = server
            .http
            .post_with(&path(source), body.as_bytes(), &headers);
        let got = outcome(&a);
        if got != (*status, word.to_string()) {
            failures.push(format!(
                "{what}: expected {status} {word}, got {} {} ({})",
                got.0, got.1, a.text
            ));
        }
        if got.1 == "queued" {
            stored += 1;
        }
        if a.status == 401 {
            assert!(
                a.json["message"].as_str().is_some_and(|m| m.len() > 20),
                "{what}: {}",
                a.text
            );
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Refused requests stored nothing; a duplicate is not a new message.
    assert_eq!(server.http.stats()["total_received"], stored);
}

#[test]
fn the_documented_curl_line_posts_a_signed_webhook() {
    if !require(&["curl", "bash"], "the curl example of docs/operations.md") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let server = Hookvault::new()
        .settings(|s| s.sources = source_tables())
        .spawn();
    std::fs::write(dir.path().join("order.json"), "{\"id\":\"evt_curl\"}").unwrap();
    for source in ["std", "gh", "stripe", "shop", "hmacb64"] {
        let script = format!(
            "curl -s -X POST --data-binary @order.json {base}/api/v2/webhooks/in/{source} \
             $(\"$HV\" sign --config {config} --source {source} order.json | sed 's/^/-H /')",
            base = server.http.base,
            config = config.display(),
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("HV", env!("CARGO_BIN_EXE_hookvault"))
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(
            answer["status"],
            "queued",
            "{source}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn start_up_refuses_bad_sources_naming_the_key() {
    let cases = [
        ("[[sources]]\nname = \"a\"\n[[sources]]\nname = \"b\"\npath = \"/api/v2/webhooks/in/a\"\n", "sources[1].path"),
        ("[[sources]]\nname = \"a\"\npath = \"/api/v2/webhooks/logs\"\n", "sources[0].path"),
        ("[[sources]]\nname = \"a\"\nverify = \"github\"\n", "sources[0].secrets"),
        ("[[sources]]\nname = \"a\"\nverify = \"standard-webhooks\"\nsecrets = [\"whsec_***\"]\n", "sources[0].secrets"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = run_cli(&["check-config", "--config", file.to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
        let db = dir.path().join("never.db");
        let out = run_cli(
            &[
                "serve",
                "--config",
                file.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--db",
                db.to_str().unwrap(),
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
}

/// Polls `path` until `done` holds for its JSON answer (the rejections log is written without
/// holding the 401 for a commit).
fn wait_for(http: &crate::harness::Http, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = http.get(path);
        if done(&a.json) {
            return a.json;
        }
        assert!(std::time::Instant::now() < until, "{path}: {}", a.text);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_refused_webhook_stores_nothing_and_is_kept_in_a_bounded_rejections_log() {
    let server = Hookvault::new()
        .settings(|s| {
            s.sources = source_tables();
            s.ingest.rejections_kept = 3;
        })
        .spawn();
    let http = &server.http;
    let forged = [("X-Hub-Signature-256", "sha256=00")];
    for i in 0..5 {
        let body = format!("{{\"secret-looking\":\"body-{i}\"}}");
        let a = http.post_with(&path("gh"), body.as_bytes(), &forged);
        assert_eq!(outcome(&a), (401, "signature_invalid".into()), "{}", a.text);
    }
    let a = http.post(&path("tok"), b"{}");
    assert_eq!(outcome(&a), (401, "token_invalid".into()));

    let log = wait_for(http, "/api/v2/webhooks/rejections", |v| {
        v["items"][0]["source"] == "tok"
    });
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "bounded by ingest.rejections_kept: {log}");
    assert_eq!(items[0]["reason"], "token_invalid");
    assert_eq!(items[1]["reason"], "signature_invalid");
    assert_eq!(items[1]["size"], 27);
    assert!(
        items[1]["remote_addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{log}"
    );
    assert!(
        items[0]["id"].as_i64() > items[1]["id"].as_i64(),
        "newest first"
    );
    assert!(
        !log.to_string().contains("body-"),
        "no body in the log: {log}"
    );
    let gh = http.get("/api/v2/webhooks/rejections?source=gh&limit=1");
    assert_eq!(gh.json["items"][0]["source"], "gh");
    assert_eq!(gh.json["next_before_id"], items[1]["id"]);
    assert_eq!(
        http.get("/api/v2/webhooks/rejections?source=Bad!").status,
        400
    );

    // Nothing was stored, and each refusal is counted for its source.
    let stats = http.stats();
    assert_eq!(stats["total_received"], 0);
    assert_eq!(stats["sources"]["gh"]["rejected"], 5, "{stats}");
    assert_eq!(stats["sources"]["tok"]["rejected"], 1);
    assert_eq!(stats["sources"]["std"]["rejected"], 0);
    assert_eq!(http.get("/api/v2/webhooks/logs").json["count"], 0);
}

#[test]
fn dedupe_by_delivery_id_is_per_source_and_everything_carries_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let server = Hookvault::new()
        .settings(|s| s.sources = source_tables())
        .spawn();
    let http = &server.http;
    let signed = sign(&config, "std", STD_BODY, &["--id", "same-id"]);
    let h: Vec<(&str, &str)> = signed
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // The same delivery id at two sources (the same secret signs for both): two messages.
    let first = http.post_with(&path("std"), STD_BODY.as_bytes(), &h);
    let other = http.post_with(&path("rot"), STD_BODY.as_bytes(), &h);
    let again = http.post_with(&path("std"), STD_BODY.as_bytes(), &h);
    assert_eq!(outcome(&first), (200, "queued".into()));
    assert_eq!(outcome(&other), (200, "queued".into()));
    assert_eq!(outcome(&again), (200, "duplicate".into()));
    assert_eq!(again.json["id"], first.json["id"]);
    // An order through the orders source, and a body the order parser refuses.
    let order = crate::harness::order_body(7);
    assert_eq!(
        http.post("/api/v2/webhooks/orders", order.as_bytes())
            .status,
        200
    );
    assert_eq!(
        http.post("/api/v2/webhooks/orders", b"not json").status,
        200
    );
    http.wait_drained(std::time::Duration::from_secs(20));

    let logs = http.get("/api/v2/webhooks/logs?source=std").json;
    assert_eq!(logs["count"], 1, "{logs}");
    assert_eq!(logs["items"][0]["source"], "std");
    let orders = http.get("/api/v2/orders?source=orders").json;
    assert_eq!(orders["count"], 1, "{orders}");
    assert_eq!(orders["items"][0]["source"], "orders");
    assert_eq!(http.get("/api/v2/orders?source=std").json["count"], 0);
    let dead = http
        .get("/api/v2/webhooks/queue/dead-letters?source=orders")
        .json;
    assert_eq!(dead["count"], 1, "{dead}");
    assert_eq!(dead["items"][0]["source"], "orders");
    assert_eq!(
        http.get("/api/v2/webhooks/queue/dead-letters?source=std")
            .json["count"],
        0
    );
    // A store source keeps what the order parser would refuse: processed, not dead.
    assert_eq!(logs["items"][0]["status"], "processed");

    let stats = http.stats();
    let figures = |s: &str| stats["sources"][s].clone();
    assert_eq!(figures("std")["received"], 1, "{stats}");
    assert_eq!(figures("std")["processed"], 1);
    assert_eq!(figures("rot")["received"], 1);
    assert_eq!(figures("orders")["received"], 2);
    assert_eq!(figures("orders")["processed"], 1);
    assert_eq!(figures("orders")["dead"], 1);
    assert_eq!(figures("orders")["failed"], 1);
    let metrics = http.get("/metrics").text;
    for line in [
        "hookvault_source_received_total{source=\"std\"} 1",
        "hookvault_source_dead_total{source=\"orders\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing");
    }
}
