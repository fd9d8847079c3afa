//! The dashboard and `/docs` in a real browser: headless Chromium (Debian's `chromium`),
//! driven over the DevTools protocol by the small synchronous client in `chromium.rs`. The
//! real binary serves the pages; the test posts webhooks over HTTP after the page has loaded
//! and reads what the page shows.
//!
//! Checks: a posted order appears on `/dashboard` without a reload; clicking **Retry** on a dead
//! letter requeues it (the audit log records the operator's retry); once the dead letter is
//! discarded the badge is `healthy` again; `/dashboard` and `/docs` fit a 390 px phone without
//! horizontal scrolling. Screenshots at phone and desktop width are taken on every run; they
//! are written out only when `SCREENSHOT_DIR` names a directory
//! (`SCREENSHOT_DIR=$PWD/docs cargo test --test integration browser::` refreshes
//! `docs/dashboard.png`).
//!
//! `CHROMIUM_BIN` names the browser when it is not `chromium` on `PATH`. Without one the test
//! skips with a note, except under `CI=true` ([`harness::require`](crate::harness::require)).

mod chromium;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{require, tool, Binary, Hookvault};
use chromium::Browser;

/// How long any one wait in this module may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// The browser to drive, or `None` (skipped) when there is none.
fn chromium_or_skip() -> Option<String> {
    let chromium = tool("CHROMIUM_BIN", &["chromium", "chromium-browser"]);
    require(
        &[&chromium],
        "apt-get install chromium; or set CHROMIUM_BIN",
    )
    .then_some(chromium)
}

/// The real binary on ephemeral ports (HTTP and the event WebSocket) with short backoffs.
fn server() -> Binary {
    Hookvault::new()
        .websocket()
        .settings(|s| {
            s.queue.backoff_base_ms = 20;
            s.queue.backoff_max_ms = 100;
        })
        .spawn()
}

fn url(server: &Binary, path: &str) -> String {
    format!("{}{path}", server.http.base)
}

/// Posts a webhook; returns its id.
fn ingest(server: &Binary, body: &str) -> i64 {
    let a = server.http.ingest(body);
    a.json["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("ingest answered {}: {}", a.status, a.text))
}

fn get_json(server: &Binary, path: &str) -> Value {
    server.http.get(path).json
}

fn wait_status(server: &Binary, id: i64, status: &str) -> Value {
    server.http.wait_status(id, status, WAIT)
}

/// An order as a Discord webhook, in the shape shops send.
fn order(number: &str, product: &str, price: &str, email: &str) -> String {
    json!({"embeds": [{
        "author": {"name": "New order"},
        "description": format!("Product\n{product}\nPrice\n{price}\nOrder Number\n{number}\nEmail\n{email}")
    }]})
    .to_string()
}

/// Polls `probe` until it gives a value; fails the test after [`WAIT`].
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `png` as `name` into `SCREENSHOT_DIR` when that is set.
fn keep_screenshot(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if let Some(dir) = std::env::var_os("SCREENSHOT_DIR") {
        let path = Path::new(&dir).join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {} ({} bytes)", path.display(), png.len());
    }
}

/// The dashboard has shown its first data (the status badge left its loading state).
const DASHBOARD_LOADED: &str =
    "document.querySelector('#badge') && /healthy|degraded|unhealthy/.test(document.querySelector('#badge').className)";

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn dashboard_shows_orders_live_and_retries_a_dead_letter() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = server();
    let started = Instant::now();
    let mut browser = Browser::launch(Path::new(&chromium));
    let launch = started.elapsed();
    let mut page = browser.new_page();
    page.viewport(1280, 900, false);

    // Until the API answers, the page says it is loading (the API's requests are held back
    // by the browser here, so the first paint can be looked at).
    page.call(
        "Fetch.enable",
        json!({"patterns": [{"urlPattern": "*/api/v2/*"}]}),
    );
    let load = page.open(&url(&server, "/dashboard"));
    let mut held = Vec::new();
    while held.len() < 3 {
        held.push(page.cdp.next_event("Fetch.requestPaused")["params"]["requestId"].clone());
    }
    let first_paint = page.eval(
        "({badge: document.querySelector('#badge').textContent, \
           orders: document.querySelector('#orders-empty').hidden ? '' : document.querySelector('#orders-empty').textContent, \
           dead: document.querySelector('#dead-empty').hidden ? '' : document.querySelector('#dead-empty').textContent, \
           pending: document.querySelectorAll('dd.pending').length, \
           dashes: [...document.querySelectorAll('dd')].filter(d => d.textContent.trim() === '–').length, \
           busy: document.querySelector('main').getAttribute('aria-busy')})",
    );
    // The figures may already be filled in from the event stream's stats frame (it is not
    // held back); what is not known yet says so instead of showing an empty table or "–".
    assert!(
        first_paint["orders"].as_str().unwrap().contains("Loading")
            && first_paint["dead"].as_str().unwrap().contains("Loading")
            && first_paint["dashes"] == 0
            && first_paint["busy"] == "true",
        "the first paint does not show a loading state: {first_paint}"
    );
    keep_screenshot("dashboard-loading.png", &page.screenshot());
    let released = Instant::now();
    for id in held {
        page.call("Fetch.continueRequest", json!({"requestId": id}));
    }
    page.call("Fetch.disable", json!({}));
    page.wait_until("the dashboard's first data", DASHBOARD_LOADED);
    page.wait_until(
        "the loading state to end",
        "document.querySelectorAll('dd.pending').length === 0 && document.querySelector('main').getAttribute('aria-busy') === 'false' \
         && document.querySelector('#orders-empty').textContent === 'No orders yet.'",
    );
    let first_data = released.elapsed();
    let live = page.wait_until(
        "the live event stream to connect",
        "document.querySelector('#ws-state').textContent === 'live'",
    );

    // An order posted after the page loaded shows up without a reload.
    let posted = Instant::now();
    ingest(
        &server,
        &order("LIVE-1001", "Walnut desk", "$249.00", "ana@example.com"),
    );
    page.wait_until(
        "order LIVE-1001 in the orders table",
        "[...document.querySelectorAll('#orders tr')].some(tr => tr.textContent.includes('LIVE-1001'))",
    );
    let order_shown = posted.elapsed();
    page.wait_until(
        "order LIVE-1001 in the live feed",
        "document.querySelector('#feed').textContent.includes('LIVE-1001')",
    );
    // Order times carry a date, not only a clock time.
    let year = page.eval(
        "[...document.querySelectorAll('#orders tr')].find(tr => tr.textContent.includes('LIVE-1001')).querySelector('.t').textContent",
    );
    let year_now = page.eval("String(new Date().getFullYear())");
    assert!(
        year.as_str().unwrap().contains(year_now.as_str().unwrap()),
        "order time without a date: {year}"
    );

    // A body that is not JSON goes to dead letters; its Retry button requeues it.
    let posted = Instant::now();
    let dead = ingest(&server, "{not json");
    let before = wait_status(&server, dead, "dead");
    let row = format!(
        "[...document.querySelectorAll('#dead tr')].find(tr => tr.querySelector('.i') && tr.querySelector('.i').textContent.trim() === '{dead}')"
    );
    page.wait_until("the dead letter's row", &row);
    let dead_shown = posted.elapsed();
    let clicked = Instant::now();
    let label = page.eval(&format!(
        "(() => {{ const b = [...{row}.querySelectorAll('button')].find(b => b.textContent.trim() === 'Retry'); b.click(); return b.textContent; }})()"
    ));
    assert_eq!(label, "Retry");
    // The server records the operator's retry and runs the message again with a fresh
    // attempt budget (it dies again: it still is not JSON), so it finishes at a later time.
    let detail = wait_for("the retry in the audit log and another run", || {
        let m = get_json(&server, &format!("/api/v2/webhooks/logs/{dead}"));
        let retried = m["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["action"] == "retry"));
        let ran_again = m["status"] == "dead" && m["processed_at"] != before["processed_at"];
        (retried && ran_again).then_some(m)
    });
    let retry_done = clicked.elapsed();
    page.wait_until(
        "the requeue message",
        &format!("document.querySelector('#dl-msg').textContent.includes('{dead}')"),
    );
    // Still a dead letter, so the badge says degraded; discarding it deals with the failure and
    // the badge turns healthy (the status describes the present, see docs/operations.md).
    page.wait_until(
        "the degraded badge",
        "document.querySelector('#badge').textContent === 'degraded'",
    );
    page.wait_until(
        "the dead letter's row after its second run",
        &format!("{row} && {row}.querySelector('.n').textContent.trim() === '1'"),
    );
    let clicked = Instant::now();
    page.eval(&format!(
        "[...{row}.querySelectorAll('button')].find(b => b.textContent.trim() === 'Discard').click()"
    ));
    page.wait_until(
        "the healthy badge once the dead letter is discarded",
        "document.querySelector('#badge').textContent === 'healthy' && document.querySelector('#reasons').textContent === ''",
    );
    let healthy = clicked.elapsed();
    keep_screenshot("dashboard-healthy.png", &page.screenshot());
    assert_eq!(
        wait_status(&server, dead, "discarded")["status"],
        "discarded"
    );
    println!(
        "browser timings: chromium launch {launch:.2?}, /dashboard load {load:.2?}, API answers -> data shown {first_data:.2?}, \
         WebSocket live {live:.2?}, order posted -> shown {order_shown:.2?}, \
         dead letter posted -> shown {dead_shown:.2?}, Retry click -> requeued and run again {retry_done:.2?} (finished again at {}), \
         Discard click -> badge healthy {healthy:.2?}",
        detail["processed_at"]
    );
}

#[test]
fn pages_fit_a_390px_phone_and_screenshots() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = server();
    // Enough data that the tables have something to lay out, long values included.
    for (n, product, price, email) in [
        (
            "A-10023",
            "Linen shirt, slim fit — sand",
            "$49.00",
            "maria.gonzalez@example.com",
        ),
        (
            "A-10024",
            "Ceramic pour-over coffee set with filters",
            "€32.50",
            "j.schmidt@example.de",
        ),
        ("A-10025", "Wool beanie", "£18.00", "oliver@example.co.uk"),
    ] {
        ingest(&server, &order(n, product, price, email));
    }
    let dead = ingest(
        &server,
        r#"{"embeds":[{"description":"Product\nMystery box"}]}"#,
    );
    wait_status(&server, dead, "dead");

    let mut browser = Browser::launch(Path::new(&chromium));
    let mut page = browser.new_page();
    let mut report = Vec::new();
    for (path, ready) in [
        ("/dashboard", DASHBOARD_LOADED),
        (
            "/docs",
            "document.querySelectorAll('section.op').length > 10",
        ),
    ] {
        page.viewport(390, 844, true);
        let load = page.open(&url(&server, path));
        page.wait_until(&format!("{path} to render"), ready);
        let width = page.scroll_width();
        let name = path.trim_start_matches('/');
        keep_screenshot(&format!("{name}-phone.png"), &page.screenshot());
        assert!(
            width <= 390,
            "{path} is {width} px wide at 390 px; wider elements: {}",
            page.overflowing(390)
        );
        report.push(format!(
            "{path} {width} px wide at 390 (loaded in {load:.2?})"
        ));
    }
    // The dashboard at phone width lists the orders before the technical figures.
    page.viewport(390, 844, true);
    page.open(&url(&server, "/dashboard"));
    page.wait_until("the dashboard's first data", DASHBOARD_LOADED);
    page.wait_until(
        "the orders",
        "document.querySelector('#orders').textContent.includes('A-10025')",
    );
    let tops = page.eval(
        "['orders-card', 'dead-card', 'kpis'].map(id => Math.round(document.getElementById(id).getBoundingClientRect().top))",
    );
    let tops: Vec<i64> = serde_json::from_value(tops).unwrap();
    assert!(
        tops[0] < 844 && tops[0] < tops[2] && tops[1] < tops[2],
        "at 390 px orders and dead letters come before the stats and orders start on the first screen: tops {tops:?}"
    );
    keep_screenshot("dashboard-phone.png", &page.screenshot());

    page.viewport(1280, 900, false);
    page.open(&url(&server, "/dashboard"));
    page.wait_until("the dashboard's first data", DASHBOARD_LOADED);
    page.wait_until(
        "the live event stream to connect",
        "document.querySelector('#ws-state').textContent === 'live'",
    );
    // One more order while the page is open, so the live feed has something to show.
    ingest(
        &server,
        &order(
            "A-10026",
            "Leather card holder",
            "$35.00",
            "sam.lee@example.com",
        ),
    );
    page.wait_until(
        "the new order in the table and the feed",
        "document.querySelector('#orders').textContent.includes('A-10026') && document.querySelector('#feed').textContent.includes('A-10026')",
    );
    keep_screenshot("dashboard.png", &page.screenshot());
    println!("{}", report.join("; "));
}
