//! The Discord-compatible relay against a local fake Discord (`harness::FakeDiscord`): bursts
//! paced by the fake's buckets, retries, dead targets, crashes, the id list and the token.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{ws_connect, FakeDiscord, Hookvault, Limit};

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

/// The value of the sample `name{labels}` (or `name` alone) in a `/metrics` text.
fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn a_forward_target_gets_its_extra_headers_and_their_values_show_nowhere() {
    const SECRET: &str = "HeAdErSeCrEt-0123456789";
    let fake = FakeDiscord::start(None, 1);
    let with_headers = format!("{}/api/webhooks/991/{TOKEN}", fake.base);
    let plain = format!("{}/api/webhooks/992/{TOKEN}", fake.base);
    let table_text = format!(
        "name = \"shop\"\nforward = [\"{plain}\", {{ url = \"{with_headers}\", headers = \
         {{ Authorization = \"Bearer {SECRET}\", X-Team = \"ops\" }} }}]\n"
    );
    let table: hookvault::SourceSettings = toml::from_str(&table_text).unwrap();
    let mut hv = Hookvault::new()
        .settings(move |s| {
            s.sources = vec![table];
            s.log.level = "debug".into();
        })
        .spawn();
    for seq in 0..2 {
        let a = hv.http.post_with(
            "/api/v2/webhooks/in/shop",
            &body(3, seq),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(a.status, 200, "{}", a.text);
    }
    fake.wait_accepted("991", 2, Duration::from_secs(20));
    fake.wait_accepted("992", 2, Duration::from_secs(20));
    for r in fake.requests() {
        let expected = (r.webhook == "991").then(|| format!("Bearer {SECRET}"));
        assert_eq!(r.header("Authorization").map(str::to_string), expected);
        assert_eq!(r.header("X-Team").is_some(), r.webhook == "991");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
    }
    let listed = wait_deliveries(&hv.http, "&state=delivered", 4, Duration::from_secs(10));
    let message = listed[0]["message_id"].as_i64().unwrap();
    for path in [
        "/api/v2/deliveries?limit=1000".to_string(),
        format!("/api/v2/webhooks/logs/{message}"),
        "/api/v2/webhooks/logs?limit=100".into(),
        "/api/v2/webhooks/queue/stats".into(),
        "/metrics".into(),
    ] {
        let a = hv.http.get(&path);
        assert_eq!(a.status, 200, "{path}");
        assert!(
            !a.text.contains(SECRET),
            "{path} shows the header: {}",
            a.text
        );
    }
    hv.stop();
    assert!(!hv.stderr().contains(SECRET), "{}", hv.stderr());

    // check-config shows the header's name, never its value; a refused header is named
    // with its source, and its value is not quoted.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forward.toml");
    std::fs::write(&config, format!("[[sources]]\n{table_text}")).unwrap();
    let out = crate::harness::run_cli(&["check-config", "--config", config.to_str().unwrap()], &[]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("Authorization") && !shown.contains(SECRET),
        "{shown}"
    );
    assert!(!shown.contains(TOKEN), "{shown}");
    let refused = format!(
        "[[sources]]\nname = \"shop\"\nforward = [{{ url = \"{plain}\", headers = {{ Host = \"{SECRET}\" }} }}]\n"
    );
    std::fs::write(&config, refused).unwrap();
    let out = crate::harness::run_cli(&["check-config", "--config", config.to_str().unwrap()], &[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("sources[0].forward[0].headers.Host (source \"shop\")"),
        "{said}"
    );
    assert!(!said.contains(SECRET) && !said.contains(TOKEN), "{said}");
}

#[test]
fn a_429_uses_none_of_the_attempts() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["601"]))
        .settings(|s| s.relay.max_attempts = 2)
        .start();
    // More 429s than attempts, then a 500 (its first attempt), then the success.
    fake.script("601", &[429, 429, 429, 500]);
    let a = hv
        .http
        .post(&format!("/api/webhooks/601/{TOKEN}"), &body(0, 0));
    assert_eq!(a.status, 204);
    fake.wait_accepted("601", 1, Duration::from_secs(20));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 429, 500, 204]);
    let d = wait_deliveries(&hv.http, "&state=delivered", 1, Duration::from_secs(10));
    assert_eq!(d[0]["attempts"], 2, "{:?}", d[0]);
    let message = d[0]["message_id"].as_i64().unwrap();
    let log = hv.http.get(&format!("/api/v2/webhooks/logs/{message}"));
    let requests: Vec<u64> = log.json["deliveries"][0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(requests, [429, 429, 429, 500, 204], "{}", log.text);
    let metrics = hv.http.get("/metrics").text;
    assert_eq!(metric(&metrics, "hookvault_relay_429_total"), Some(3.0));
    assert_eq!(hv.http.stats()["relay"]["rate_limited"], 3);
}

/// The relay's figures for one target as the stats, `/metrics` and the alerts read them.
fn target_figures(http: &crate::harness::Http, label: &str) -> (i64, Value, f64, i64) {
    let stats = http.stats();
    let metrics = http.get("/metrics").text;
    let gauge = metric(
        &metrics,
        &format!("hookvault_deliveries_pending{{target=\"{label}\"}}"),
    )
    .unwrap_or(0.0);
    (
        stats["relay"]["targets"][label]["pending"]
            .as_i64()
            .unwrap_or(0),
        stats["relay"]["targets"][label]["dead"].clone(),
        gauge,
        stats["relay"]["pending"].as_i64().unwrap(),
    )
}

/// Waits (up to 5 s) for a target's figures to read `want`: they move just after the commit a
/// listing already shows.
fn wait_figures(http: &crate::harness::Http, label: &str, want: (i64, Value, f64, i64)) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let got = target_figures(http, label);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < until,
            "{label}: {got:?}, not {want:?}: {}",
            http.stats()["relay"]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_delivery_to_a_dead_target_is_a_dead_letter_and_never_pending() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .settings(relayed_to(&fake, &["445"]))
        .start();
    let label = format!("{}/api/webhooks/445/***", fake.base);
    fake.delete("445");
    let a = hv
        .http
        .post(&format!("/api/webhooks/445/{TOKEN}"), &body(0, 0));
    assert_eq!(a.status, 204);
    wait_deliveries(&hv.http, "&state=dead", 1, Duration::from_secs(10));
    for seq in 1..4 {
        let a = hv
            .http
            .post(&format!("/api/webhooks/445/{TOKEN}"), &body(0, seq));
        assert_eq!(a.status, 204);
    }
    let dead = wait_deliveries(&hv.http, "&state=dead", 4, Duration::from_secs(10));
    assert!(dead
        .iter()
        .all(|d| d["attempts"] == 0 || d["attempts"] == 1));
    assert!(deliveries(&hv.http, "&state=pending").is_empty());
    wait_figures(&hv.http, &label, (0, Value::Bool(true), 0.0, 0));
    assert_eq!(hv.http.stats()["relay"]["dead"], 4);
    assert_eq!(fake.requests().len(), 1);

    // Retried: owed again (the figures say so), then delivered (and back to nothing owed).
    fake.recreate("445");
    let a = hv.http.post("/api/v2/deliveries/retry-failed", b"");
    assert_eq!(a.json["requeued"], 4, "{}", a.text);
    fake.wait_accepted("445", 4, Duration::from_secs(20));
    wait_deliveries(&hv.http, "&state=delivered", 4, Duration::from_secs(10));
    wait_figures(&hv.http, &label, (0, Value::Bool(false), 0.0, 0));
}

/// Retention on `hv`'s backend: a processed message whose delivery is owed, or dead (an
/// operator may still retry it, and it sends the message's body), is kept until it is
/// delivered or discarded.
fn retention_keeps_messages_whose_deliveries_are_owed(hv: Hookvault<'_>) {
    use hookvault::testing::store::RetentionSweeper;
    const DAY: i64 = 86_400_000;
    let fake = FakeDiscord::start(None, 1);
    let forward = |name: &str, webhook: &str| -> hookvault::SourceSettings {
        toml::from_str(&format!(
            "name = \"{name}\"\nforward = [\"{}/api/webhooks/{webhook}/{TOKEN}\"]",
            fake.base
        ))
        .unwrap()
    };
    let sources = vec![
        forward("owed", "993"),
        forward("refused", "994"),
        forward("fine", "995"),
    ];
    let hv = hv
        .settings(move |s| {
            s.sources = sources;
            s.relay.max_attempts = 1_000_000;
        })
        .start();
    fake.script("993", &vec![500; 100_000]);
    fake.script("994", &[400]);
    let ids: Vec<i64> = ["owed", "refused", "fine"]
        .iter()
        .map(|source| {
            let a = hv
                .http
                .post(&format!("/api/v2/webhooks/in/{source}"), &body(4, 0));
            assert_eq!(a.status, 200, "{}", a.text);
            a.json["id"].as_i64().unwrap()
        })
        .collect();
    for id in &ids {
        hv.http
            .wait_status(*id, "processed", Duration::from_secs(10));
    }
    fake.wait_accepted("995", 1, Duration::from_secs(10));
    let dead = wait_deliveries(&hv.http, "&state=dead", 1, Duration::from_secs(10));
    wait_deliveries(&hv.http, "&state=delivered", 1, Duration::from_secs(10));
    while !fake.requests().iter().any(|r| r.webhook == "993") {
        std::thread::sleep(Duration::from_millis(20));
    }

    let writer = hv.service().writer();
    let later = hookvault::testing::now_ms() + 31 * DAY;
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, later)
            .unwrap()
            .messages,
        1
    );
    let log = |id: i64| hv.http.get(&format!("/api/v2/webhooks/logs/{id}")).status;
    assert_eq!((log(ids[0]), log(ids[1]), log(ids[2])), (200, 200, 404));

    // Delivered at last, and the dead one given up: both may go now.
    fake.script("993", &[]);
    fake.wait_accepted("993", 1, Duration::from_secs(20));
    assert_eq!(fake.accepted("993")[0], body(4, 0));
    // (The delivered one of the message already removed went with it.)
    wait_deliveries(&hv.http, "&state=delivered", 1, Duration::from_secs(10));
    let d = hv
        .http
        .delete(&format!("/api/v2/deliveries/{}", dead[0]["id"]));
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, later)
            .unwrap()
            .messages,
        2
    );
    assert_eq!((log(ids[0]), log(ids[1])), (404, 404));
}

#[test]
fn retention_keeps_messages_whose_deliveries_are_owed_on_sqlite() {
    retention_keeps_messages_whose_deliveries_are_owed(Hookvault::new());
}

#[cfg(feature = "postgres")]
#[test]
fn retention_keeps_messages_whose_deliveries_are_owed_on_postgres() {
    let pg = crate::harness::pg_or_skip!();
    retention_keeps_messages_whose_deliveries_are_owed(Hookvault::new().postgres(&pg, "n1"));
}

/// Counts rows in `hv`'s database with `sql` (the same text on both backends).
enum Tables<'a> {
    Sqlite(&'a std::path::Path),
    #[cfg(feature = "postgres")]
    Postgres(&'a crate::harness::PgDb),
}

impl Tables<'_> {
    fn count(&self, sql: &str) -> i64 {
        match self {
            Tables::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            #[cfg(feature = "postgres")]
            Tables::Postgres(db) => db.client().query_one(sql, &[]).unwrap().get(0),
        }
    }

    fn execute(&self, sql: &str) {
        match self {
            Tables::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            #[cfg(feature = "postgres")]
            Tables::Postgres(db) => db.client().batch_execute(sql).unwrap(),
        }
    }

    /// Takes the schema back one version, to before delivery retention.
    fn before_delivery_retention(&self) {
        self.execute(
            "DROP INDEX deliveries_own_finished; \
             DELETE FROM counters WHERE name IN ('deliveries_delivered', 'deliveries_dead');",
        );
        match self {
            Tables::Sqlite(_) => self.execute("PRAGMA user_version = 4"),
            #[cfg(feature = "postgres")]
            Tables::Postgres(_) => self.execute("UPDATE hookvault_schema SET version = 3"),
        }
    }

    fn has_index(&self, name: &str) -> bool {
        let sql = match self {
            Tables::Sqlite(_) => {
                format!("SELECT count(*) FROM sqlite_master WHERE name = '{name}'")
            }
            #[cfg(feature = "postgres")]
            Tables::Postgres(_) => {
                format!("SELECT count(*) FROM pg_indexes WHERE indexname = '{name}'")
            }
        };
        self.count(&sql) == 1
    }

    /// `(deliveries, delivery_attempts)` rows.
    fn deliveries(&self) -> (i64, i64) {
        (
            self.count("SELECT count(*) FROM deliveries"),
            self.count("SELECT count(*) FROM delivery_attempts"),
        )
    }
}

/// Retention on `hv`'s backend for deliveries: a message's go with it (with their attempts);
/// ones of their own (alerts) go once delivered or discarded for `storage.retention_days`; a
/// dead one stays, its message with it, until an operator discards it. The relay's
/// `delivered` total is not lowered by the rows going, after a restart either.
fn retention_removes_finished_deliveries(hv: impl Fn() -> Hookvault<'static>, tables: Tables) {
    use hookvault::testing::store::{NewDelivery, RetentionSweeper, Swept, TargetKind, WriteOp};
    const DAY: i64 = 86_400_000;
    let fake = FakeDiscord::start(None, 1);
    let url = |webhook: &str| format!("{}/api/webhooks/{webhook}/{TOKEN}", fake.base);
    let forward = |name: &str, webhook: &str| -> hookvault::SourceSettings {
        toml::from_str(&format!(
            "name = \"{name}\"\nforward = [\"{}\"]",
            url(webhook)
        ))
        .unwrap()
    };
    let sources = vec![forward("fine", "995"), forward("refused", "994")];
    let server = hv().settings(move |s| s.sources = sources).start();
    fake.script("994", &[400]);
    fake.script("997", &[400, 400]);
    let ids: Vec<i64> = ["fine", "refused"]
        .iter()
        .map(|source| {
            let a = server
                .http
                .post(&format!("/api/v2/webhooks/in/{source}"), &body(5, 0));
            assert_eq!(a.status, 200, "{}", a.text);
            a.json["id"].as_i64().unwrap()
        })
        .collect();
    let writer = server.service().writer();
    // Deliveries of their own, as alerts make them: one delivered, two dead.
    for webhook in ["996", "997", "997"] {
        let op = WriteOp::Deliver(NewDelivery {
            target: url(webhook),
            kind: TargetKind::Http,
            content_type: Some("application/json".into()),
            headers_json: "{}".into(),
            body: Some(body(6, 0)),
        });
        writer.submit(op, Duration::from_secs(10)).unwrap();
    }
    for id in &ids {
        server
            .http
            .wait_status(*id, "processed", Duration::from_secs(10));
    }
    wait_deliveries(&server.http, "&state=delivered", 2, Duration::from_secs(10));
    let dead = wait_deliveries(&server.http, "&state=dead", 3, Duration::from_secs(10));
    // One alert given up: discarded, its clock starts now.
    let alert_dead: Vec<i64> = dead
        .iter()
        .filter(|d| d["message_id"].is_null())
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let message_dead = dead.iter().find(|d| !d["message_id"].is_null()).unwrap()["id"].clone();
    let d = server
        .http
        .delete(&format!("/api/v2/deliveries/{}", alert_dead[0]));
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(tables.deliveries(), (5, 5));

    let now = hookvault::testing::now_ms();
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, now).unwrap(),
        Swept::default()
    );
    let later = now + 31 * DAY;
    // The processed message whose delivery went (and that delivery), the delivered alert and
    // the discarded one; the dead ones and the message of one of them stay.
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, later).unwrap(),
        Swept {
            messages: 1,
            deliveries: 3
        }
    );
    assert_eq!(tables.deliveries(), (2, 2));
    let left = deliveries(&server.http, "");
    assert!(left.iter().all(|d| d["state"] == "dead"), "{left:?}");
    let log = |id: i64| {
        server
            .http
            .get(&format!("/api/v2/webhooks/logs/{id}"))
            .status
    };
    assert_eq!((log(ids[0]), log(ids[1])), (404, 200));

    // Given up by an operator: they go too, the message with its delivery.
    for id in [alert_dead[1], message_dead.as_i64().unwrap()] {
        let d = server.http.delete(&format!("/api/v2/deliveries/{id}"));
        assert_eq!(d.status, 200, "{}", d.text);
    }
    assert_eq!(
        RetentionSweeper::run_once(&writer, 30, later).unwrap(),
        Swept {
            messages: 1,
            deliveries: 2
        }
    );
    assert_eq!(tables.deliveries(), (0, 0));
    assert_eq!(log(ids[1]), 404);
    let relay = server.http.stats()["relay"].clone();
    assert_eq!(
        (&relay["delivered"], &relay["dead"]),
        (&2.into(), &0.into())
    );
    drop(server);
    let again = hv().start();
    let relay = again.http.stats()["relay"].clone();
    assert_eq!(
        (&relay["delivered"], &relay["dead"]),
        (&2.into(), &0.into()),
        "after a restart"
    );
}

#[test]
fn retention_removes_finished_deliveries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("retention.db");
    let path = db.clone();
    retention_removes_finished_deliveries(
        move || Hookvault::new().database(&path),
        Tables::Sqlite(&db),
    );
}

#[cfg(feature = "postgres")]
#[test]
fn retention_removes_finished_deliveries_on_postgres() {
    let pg = crate::harness::pg_or_skip!();
    retention_removes_finished_deliveries(
        || Hookvault::new().postgres(&pg, "n1"),
        Tables::Postgres(&pg),
    );
}

/// The `delivery.dead` events on `ws` until their counts add up to `n`.
fn dead_events(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, n: u64) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while events
        .iter()
        .map(|e: &Value| e["count"].as_u64().unwrap())
        .sum::<u64>()
        < n
    {
        assert!(Instant::now() < until, "only {events:?}");
        if let tungstenite::Message::Text(t) = ws.read().expect("event stream closed") {
            let e: Value = serde_json::from_str(t.as_str()).unwrap();
            if e["type"] == "delivery.dead" {
                events.push(e);
            }
        }
    }
    events
}

#[test]
fn every_delivery_that_dies_is_counted_and_announced() {
    let fake = FakeDiscord::start(None, 1);
    let hv = Hookvault::new()
        .websocket()
        .settings(relayed_to(&fake, &["446"]))
        .start();
    let label = format!("{}/api/webhooks/446/***", fake.base);
    let mut ws = ws_connect(hv.service().ws_addr().unwrap(), "/ws").unwrap();
    // A stats frame: the stream counts this client, so events are published to it.
    while !matches!(ws.read().unwrap(), tungstenite::Message::Text(t) if t.contains("\"stats\"")) {}
    fake.delete("446");
    let post = |seq| {
        let a = hv
            .http
            .post(&format!("/api/webhooks/446/{TOKEN}"), &body(0, seq));
        assert_eq!(a.status, 204, "{}", a.text);
    };
    post(0);
    let answered = dead_events(&mut ws, 1);
    assert_eq!(answered[0]["target"], label.as_str(), "{answered:?}");
    assert!(answered[0]["error"].as_str().unwrap().contains("404"));
    // Its target dead: the next ones are dead letters from the start, and said to be.
    for seq in 1..4 {
        post(seq);
    }
    let created_dead = dead_events(&mut ws, 3);
    assert!(
        created_dead.iter().all(|e| e["target"] == label.as_str()
            && e["error"].as_str().unwrap().starts_with("target dead: ")),
        "{created_dead:?}"
    );
    let dead = wait_deliveries(&hv.http, "&state=dead", 4, Duration::from_secs(10));
    let mut ids: Vec<i64> = dead.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(answered[0]["id"].as_i64(), Some(ids[0]));
    assert!(created_dead
        .iter()
        .all(|e| ids[1..].contains(&e["id"].as_i64().unwrap())));
    let metrics = hv.http.get("/metrics").text;
    assert_eq!(
        metric(&metrics, "hookvault_deliveries_total{result=\"dead\"}"),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(hv.http.stats()["relay"]["dead"], 4);
    assert_eq!(fake.requests().len(), 1);
}

/// `DELETE` of a delivery on `hv`'s backend: `409` while its request is in flight (it cannot
/// be called back; the answer decides what is left to give up), then as its state says; a
/// retry of one that is not dead names its state.
fn discarding_in_flight(hv: Hookvault<'_>) {
    let fake = FakeDiscord::start(None, 1);
    let hv = hv.settings(relayed_to(&fake, &["447"])).start();
    fake.hold("447");
    fake.script("447", &[400]);
    let a = hv
        .http
        .post(&format!("/api/webhooks/447/{TOKEN}"), &body(0, 0));
    assert_eq!(a.status, 204);
    fake.wait_holding(1);
    let listed = deliveries(&hv.http, "&state=pending");
    assert_eq!(listed.len(), 1, "listed as pending while in flight");
    let id = listed[0]["id"].as_i64().unwrap();
    let d = hv.http.delete(&format!("/api/v2/deliveries/{id}"));
    assert_eq!(d.status, 409, "{}", d.text);
    assert_eq!(d.json["error"], "delivery_in_flight", "{}", d.text);
    assert!(d.json["message"]
        .as_str()
        .unwrap()
        .contains("try again in a moment"));
    assert_eq!(
        deliveries(&hv.http, "&state=pending").len(),
        1,
        "nothing changed"
    );
    // Only a dead delivery can be retried; any other is named with its state.
    let a = hv
        .http
        .post(&format!("/api/webhooks/447/{TOKEN}"), &body(0, 2));
    assert_eq!(a.status, 204);
    let owed = wait_deliveries(&hv.http, "&state=pending", 2, Duration::from_secs(10));
    let queued_behind = owed[0]["id"].as_i64().unwrap();
    assert_ne!(queued_behind, id);
    assert_retry_refused(&hv.http, id, "not_dead", "is sending, not dead");
    assert_retry_refused(&hv.http, queued_behind, "not_dead", "is pending, not dead");

    // The target refuses it: dead, and now it can be given up.
    fake.release("447");
    wait_deliveries(&hv.http, "&state=dead", 1, Duration::from_secs(10));
    let d = hv.http.delete(&format!("/api/v2/deliveries/{id}"));
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(deliveries(&hv.http, "&state=discarded").len(), 1);

    // Delivered (or discarded) already: nothing to give up; an unknown id: not found.
    let a = hv
        .http
        .post(&format!("/api/webhooks/447/{TOKEN}"), &body(0, 1));
    assert_eq!(a.status, 204);
    let delivered = wait_deliveries(&hv.http, "&state=delivered", 1, Duration::from_secs(10));
    for (id, code) in [
        (delivered[0]["id"].as_i64().unwrap(), "not_discardable"),
        (id, "not_discardable"),
        (id + 1000, "not_found"),
    ] {
        let d = hv.http.delete(&format!("/api/v2/deliveries/{id}"));
        assert_eq!(
            (d.status, d.json["error"].as_str()),
            (404, Some(code)),
            "{}",
            d.text
        );
    }
    let delivered_id = delivered[0]["id"].as_i64().unwrap();
    assert_retry_refused(&hv.http, delivered_id, "not_dead", "is delivered, not dead");
    assert_retry_refused(&hv.http, id, "not_dead", "is discarded, not dead");
    assert_retry_refused(&hv.http, id + 1000, "not_found", "no delivery with id");
}

/// `POST /api/v2/deliveries/{id}/retry` answers `404 error` with `message` in its text.
fn assert_retry_refused(http: &crate::harness::Http, id: i64, error: &str, message: &str) {
    let a = http.post(&format!("/api/v2/deliveries/{id}/retry"), b"");
    assert_eq!(
        (a.status, a.json["error"].as_str()),
        (404, Some(error)),
        "{}",
        a.text
    );
    assert!(
        a.json["message"]
            .as_str()
            .unwrap_or_default()
            .contains(message),
        "{}",
        a.text
    );
}

#[test]
fn discarding_a_delivery_whose_request_is_in_flight_answers_409_on_sqlite() {
    discarding_in_flight(Hookvault::new());
}

#[cfg(feature = "postgres")]
#[test]
fn discarding_a_delivery_whose_request_is_in_flight_answers_409_on_postgres() {
    let pg = crate::harness::pg_or_skip!();
    discarding_in_flight(Hookvault::new().postgres(&pg, "n1"));
}

/// A database from before delivery retention, on `hv`'s backend: the migration starts the
/// relay's `delivered` total from the delivered rows (an earlier retention left some without
/// their message; counted, then removed with their attempts), and adds the index.
fn delivery_retention_migration(hv: impl Fn() -> Hookvault<'static>, tables: Tables) {
    drop(hv().start());
    tables.before_delivery_retention();
    tables.execute(
        "INSERT INTO messages (id, received_at, path, size, state, attempts, finished_at) \
         VALUES (1, 1, '/api/v2/webhooks/orders', 2, 'processed', 1, 2); \
         INSERT INTO bodies (message_id, headers, payload) VALUES (1, '{}', 'hi'); \
         INSERT INTO deliveries (id, message_id, target, label, kind, headers, state, \
         created_at, finished_at) VALUES \
         (1, 1, 'http://t/a', 'http://t/***', 'http', '{}', 'delivered', 1, 2), \
         (2, 99, 'http://t/a', 'http://t/***', 'http', '{}', 'delivered', 1, 2), \
         (3, NULL, 'http://t/a', 'http://t/***', 'http', '{}', 'dead', 1, 2), \
         (4, 98, 'http://t/a', 'http://t/***', 'http', '{}', 'dead', 1, 2); \
         INSERT INTO delivery_attempts (delivery_id, at, status, latency_ms) VALUES \
         (1, 2, 204, 1), (2, 2, 204, 1), (3, 2, 400, 1), (4, 2, 400, 1);",
    );
    let server = hv().start();
    let relay = server.http.stats()["relay"].clone();
    assert_eq!(
        (&relay["delivered"], &relay["dead"]),
        (&2.into(), &2.into()),
        "{relay}"
    );
    // The orphan that was delivered went; the dead one stays for an operator.
    assert_eq!(tables.deliveries(), (3, 3));
    assert!(tables.has_index("deliveries_own_finished"));
}

#[test]
fn delivery_retention_migration_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("migration.db");
    let path = db.clone();
    delivery_retention_migration(
        move || Hookvault::new().database(&path),
        Tables::Sqlite(&db),
    );
}

#[cfg(feature = "postgres")]
#[test]
fn delivery_retention_migration_on_postgres() {
    let pg = crate::harness::pg_or_skip!();
    delivery_retention_migration(
        || Hookvault::new().postgres(&pg, "n1"),
        Tables::Postgres(&pg),
    );
}
