//! The Discord-compatible relay against a local fake Discord (`harness::FakeDiscord`): bursts
//! paced by the fake's buckets, retries, dead targets, crashes, the id list and the token.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{FakeDiscord, Hookvault, Limit};

const TOKEN: &str = "SeCrEtToKeN_abcdefghijklmnop-1234";

fn body(bot: usize, seq: usize) -> Vec<u8> {
    format!(r#"{{"content":"bot {bot} seq {seq}","embeds":[]}}"#).into_bytes()
}

/// `(bot, seq)` from a body [`body`] made.
fn tag(b: &[u8]) -> (usize, usize) {
    let v: Value = serde_json::from_slice(b).unwrap();
    let text = v["content"].as_str().unwrap().to_string();
    let parts: Vec<&str> = text.split_whitespace().collect();
    (parts[1].parse().unwrap(), parts[3].parse().unwrap())
}

fn relayed_to(fake: &FakeDiscord, ids: &[&str]) -> impl FnOnce(&mut hookvault::Settings) {
    let base = fake.base.clone();
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    move |s| {
        s.relay.discord_base = base;
        s.relay.discord_webhook_ids = ids;
    }
}

fn deliveries(http: &crate::harness::Http, query: &str) -> Vec<Value> {
    let a = http.get(&format!("/api/v2/deliveries?limit=1000{query}"));
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["items"].as_array().unwrap().clone()
}

fn wait_deliveries(
    http: &crate::harness::Http,
    query: &str,
    n: usize,
    limit: Duration,
) -> Vec<Value> {
    let until = Instant::now() + limit;
    loop {
        let d = deliveries(http, query);
        if d.len() >= n {
            return d;
        }
        assert!(
            Instant::now() < until,
            "{} of {n} deliveries {query}: {d:?}",
            d.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_burst_from_eight_bots_is_relayed_in_order_at_the_targets_pace() {
    // Discord allows about 5 requests per 2 s per webhook; the fake's window is shorter so
    // the test runs in seconds, the pacing being the same.
    let fake = FakeDiscord::start(
        Some(Limit {
            limit: 5,
            window: Duration::from_millis(250),
        }),
        2,
    );
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["111", "222"]))
        .start();
    let bots: Vec<_> = (0..8)
        .map(|bot| {
            let http = hv.http.clone();
            std::thread::spawn(move || {
                for seq in 0..300 / 8 + usize::from(bot < 300 % 8) {
                    let webhook = if seq % 2 == 0 { "111" } else { "222" };
                    let a = http.post_with(
                        &format!("/api/webhooks/{webhook}/{TOKEN}"),
                        &body(bot, seq),
                        &[("Content-Type", "application/json")],
                    );
                    assert_eq!(a.status, 204, "{}", a.text);
                }
            })
        })
        .collect();
    for b in bots {
        b.join().unwrap();
    }
    let total_111 = (0..8)
        .map(|bot| {
            (0..300 / 8 + usize::from(bot < 300 % 8))
                .filter(|s| s % 2 == 0)
                .count()
        })
        .sum::<usize>();
    let a = fake.wait_accepted("111", total_111, Duration::from_secs(60));
    let b = fake.wait_accepted("222", 300 - total_111, Duration::from_secs(60));
    assert_eq!(a.len() + b.len(), 300);
    for (webhook, got) in [("111", &a), ("222", &b)] {
        // Each bot posted one after the other, so its messages are in its order; the relay
        // keeps message order per webhook.
        let mut last = [None::<usize>; 8];
        for (bot, seq) in got.iter().map(|b| tag(b)) {
            assert!(
                last[bot] < Some(seq),
                "webhook {webhook}: bot {bot} seq {seq} after {:?}",
                last[bot]
            );
            last[bot] = Some(seq);
        }
    }
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.token == TOKEN));
    assert!(requests
        .iter()
        .all(|r| r.content_type.as_deref() == Some("application/json")));
    assert!(requests.iter().all(|r| r
        .user_agent
        .as_deref()
        .is_some_and(|u| u.starts_with("DiscordBot ("))));
    let limited = fake.count_status(429);
    assert!(limited <= 5, "{limited} requests were rate limited");
    let stats = hv.http.stats();
    assert_eq!(stats["relay"]["delivered"], 300, "{}", stats["relay"]);
    assert_eq!(stats["relay"]["rate_limited"], limited as u64);
}

#[test]
fn a_500_is_retried_and_the_body_and_thread_id_go_unchanged() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["333"]))
        .start();
    fake.script("333", &[500]);
    let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--XyZ--\r\n";
    let a = hv.http.post_with(
        &format!("/api/v10/webhooks/333/{TOKEN}?thread_id=42"),
        multipart,
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
    );
    assert_eq!(a.status, 204, "{}", a.text);
    let got = fake.wait_accepted("333", 1, Duration::from_secs(20));
    assert_eq!(got[0], multipart.to_vec());
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one 500, then the success");
    assert_eq!(requests[0].status, 500);
    assert_eq!(requests[1].query, "thread_id=42");
    assert_eq!(
        requests[1].content_type.as_deref(),
        Some("multipart/form-data; boundary=XyZ")
    );
    let d = wait_deliveries(&hv.http, "&state=delivered", 1, Duration::from_secs(10));
    let message = d[0]["message_id"].as_i64().unwrap();
    let log = hv.http.get(&format!("/api/v2/webhooks/logs/{message}"));
    let delivery = &log.json["deliveries"][0];
    assert_eq!(delivery["state"], "delivered", "{}", log.text);
    assert_eq!(delivery["requests"][0]["status"], 500);
    assert_eq!(delivery["requests"][1]["status"], 204);
    assert!(!log.text.contains(TOKEN), "{}", log.text);
}

#[test]
fn an_unknown_webhook_kills_the_target_after_one_request_until_retried() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["444"]))
        .start();
    fake.delete("444");
    for seq in 0..3 {
        let a = hv
            .http
            .post(&format!("/api/webhooks/444/{TOKEN}"), &body(0, seq));
        assert_eq!(a.status, 204);
    }
    wait_deliveries(&hv.http, "&state=dead", 3, Duration::from_secs(10));
    // More after the target died: dead at once, no request.
    let a = hv
        .http
        .post(&format!("/api/webhooks/444/{TOKEN}"), &body(0, 3));
    assert_eq!(a.status, 204);
    wait_deliveries(&hv.http, "&state=dead", 4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.requests().len(), 1, "{:?}", fake.requests());
    assert_eq!(fake.requests()[0].status, 404);

    fake.recreate("444");
    let a = hv.http.post("/api/v2/deliveries/retry-failed", b"");
    assert_eq!(a.json["requeued"], 4, "{}", a.text);
    let got = fake.wait_accepted("444", 4, Duration::from_secs(20));
    let seqs: Vec<usize> = got.iter().map(|b| tag(b).1).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}

#[test]
fn an_unlisted_id_is_refused_and_nothing_is_stored_or_relayed() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["555"]))
        .start();
    let a = hv
        .http
        .post(&format!("/api/webhooks/556/{TOKEN}"), &body(0, 0));
    assert_eq!(a.status, 403);
    assert_eq!(a.json["error"], "relay_not_allowed");
    assert!(!a.text.contains(TOKEN));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hv.http.stats()["total_received"], 0);
    assert!(deliveries(&hv.http, "").is_empty());
    assert!(fake.requests().is_empty());
}

#[test]
fn wait_true_passes_discords_answer_back() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["666"]))
        .start();
    let a = hv
        .http
        .post(&format!("/api/webhooks/666/{TOKEN}?wait=true"), &body(0, 0));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["content"], "relayed");
}

#[test]
fn after_kill_9_every_delivery_arrives_and_the_token_is_never_shown() {
    let fake = FakeDiscord::start(
        Some(Limit {
            limit: 5,
            window: Duration::from_millis(400),
        }),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let start = || {
        Hookvault::new()
            .database(&db)
            .settings(relayed_to(&fake, &["777"]))
            .settings(|s| s.log.level = "debug".into())
            .spawn()
    };
    let mut first = start();
    let n = 40;
    for seq in 0..n {
        let a = first
            .http
            .post(&format!("/api/webhooks/777/{TOKEN}"), &body(0, seq));
        assert_eq!(a.status, 204);
    }
    fake.wait_accepted("777", 8, Duration::from_secs(20));
    first.kill9();
    let second = start();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<usize> = fake.accepted("777").iter().map(|b| tag(b).1).collect();
        let distinct: std::collections::BTreeSet<usize> = got.iter().copied().collect();
        if distinct.len() == n {
            assert!(got.len() - n <= 1, "more than one duplicate: {got:?}");
            let mut sorted = got.clone();
            sorted.dedup();
            assert!(
                sorted.windows(2).all(|w| w[0] < w[1]),
                "out of order: {got:?}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "only {} of {n} arrived: {got:?}",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in [
        "/api/v2/deliveries?limit=1000",
        "/api/v2/webhooks/logs?limit=1000",
        "/api/v2/webhooks/logs/1",
        "/api/v2/webhooks/queue/stats",
        "/metrics",
    ] {
        let a = second.http.get(path);
        assert_eq!(a.status, 200, "{path}");
        assert!(
            !a.text.contains(TOKEN),
            "{path} shows the token: {}",
            a.text
        );
    }
    assert!(!first.stderr().contains(TOKEN), "{}", first.stderr());
    assert!(!second.stderr().contains(TOKEN), "{}", second.stderr());
}

#[test]
fn a_global_rate_limit_pauses_every_discord_target() {
    let fake = FakeDiscord::start(None, 2);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["881", "882"]))
        .start();
    fake.global_limit(1);
    let a = hv
        .http
        .post(&format!("/api/webhooks/881/{TOKEN}"), &body(0, 0));
    assert_eq!(a.status, 204);
    let first = Instant::now() + Duration::from_secs(10);
    while fake.count_status(429) == 0 {
        assert!(Instant::now() < first, "no global 429 reached the fake");
        std::thread::sleep(Duration::from_millis(5));
    }
    let b = hv
        .http
        .post(&format!("/api/webhooks/882/{TOKEN}"), &body(1, 0));
    assert_eq!(b.status, 204);
    fake.wait_accepted("881", 1, Duration::from_secs(10));
    fake.wait_accepted("882", 1, Duration::from_secs(10));
    let requests = fake.requests();
    let limited = requests.iter().find(|r| r.status == 429).unwrap().at;
    // The fake asked for 0.3 s; no Discord target is sent anything before it has passed.
    for r in requests.iter().filter(|r| r.status != 429) {
        assert!(
            r.at.duration_since(limited) >= Duration::from_millis(280),
            "{} sent {:?} after a global 429",
            r.webhook,
            r.at.duration_since(limited)
        );
    }
}

#[test]
fn a_source_forwards_each_stored_message_through_the_same_engine() {
    let fake = FakeDiscord::start(None, 1);
    let url = format!("{}/api/webhooks/990/{TOKEN}", fake.base);
    let table: hookvault::SourceSettings =
        toml::from_str(&format!("name = \"shop\"\nforward = [\"{url}\"]")).unwrap();
    let hv = Hookvault::new()
        .settings(move |s| s.sources = vec![table])
        .start();
    for seq in 0..3 {
        let a = hv.http.post_with(
            "/api/v2/webhooks/in/shop",
            &body(2, seq),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let got = fake.wait_accepted("990", 3, Duration::from_secs(20));
    let seqs: Vec<usize> = got.iter().map(|b| tag(b).1).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    let listed = wait_deliveries(&hv.http, "&state=delivered", 3, Duration::from_secs(10));
    assert!(listed.iter().all(|d| d["kind"] == "http"));
    assert!(!serde_json::to_string(&listed).unwrap().contains(TOKEN));
}
