//! The dashboard and `/docs` in a real browser: headless Chromium (Debian's `chromium`),
//! driven over the DevTools protocol by a small synchronous client below (tungstenite and
//! serde_json). The real binary serves the pages; the test posts webhooks over HTTP after the
//! page has loaded and reads what the page shows.
//!
//! Checks: a posted order appears on `/dashboard` without a reload; clicking **Retry** on a dead
//! letter requeues it (the audit log records the operator's retry); `/dashboard` and `/docs`
//! fit a 390 px phone without horizontal scrolling. Screenshots at phone and desktop width are
//! taken on every run; they are written out only when `SCREENSHOT_DIR` names a directory
//! (`SCREENSHOT_DIR=docs cargo test --test browser` refreshes `docs/dashboard.png`).
//!
//! `CHROMIUM_BIN` names the browser when it is not `chromium` on `PATH`. Without one the test
//! skips with a note, except under `CI=true`, where a missing browser is a failure.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long any one wait in this file may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// `CI=true`: a missing third-party tool fails the test instead of skipping it.
fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The tool named by `env_var`, else the first of `names` found on `PATH`. (The variable must
/// not start with `HOOKVAULT_`: the server reads those as settings and refuses unknown ones.)
fn find_tool(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    let dirs: Vec<PathBuf> = std::env::split_paths(&paths).collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn chromium_or_skip() -> Option<PathBuf> {
    let found = find_tool("CHROMIUM_BIN", &["chromium", "chromium-browser"]);
    if found.is_none() {
        assert!(
            !tools_required(),
            "CI=true and chromium is missing (.ci/run installs Debian's chromium package)"
        );
        eprintln!("skipped: chromium not found (apt-get install chromium; or set CHROMIUM_BIN)");
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The server.

/// `hookvault serve` on ephemeral ports (HTTP and the event WebSocket) with a temp database.
struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookvault"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--ws-listen",
                "127.0.0.1:0",
            ])
            .arg("--db")
            .arg(dir.path().join("hookvault.db"))
            .env("HOOKVAULT_QUEUE_BACKOFF_BASE_MS", "20")
            .env("HOOKVAULT_QUEUE_BACKOFF_MAX_MS", "100")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("start hookvault");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listening line from hookvault: {line:?}"))
            .to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child,
            base: format!("http://{addr}"),
            agent,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts a webhook; returns its id.
    fn ingest(&self, body: &str) -> i64 {
        let mut resp = self
            .agent
            .post(self.url("/api/v2/webhooks/orders"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let text = resp.body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        v["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("ingest answered {}: {text}", resp.status()))
    }

    fn get_json(&self, path: &str) -> Value {
        let mut resp = self.agent.get(self.url(path)).call().unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn wait_status(&self, id: i64, status: &str) -> Value {
        wait_for(&format!("message {id} to be {status}"), || {
            let m = self.get_json(&format!("/api/v2/webhooks/logs/{id}"));
            (m["status"] == status).then_some(m)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

// ---------------------------------------------------------------------------------------------
// The browser and a DevTools protocol client.

/// Headless Chromium with its own profile directory; closed on drop.
struct Browser {
    child: Child,
    cdp: Cdp,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // The DevTools address is printed on stderr; the rest of stderr is drained by a
        // thread so the browser never blocks on a full pipe.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let url = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("chromium exited without a DevTools address:\n{seen}");
            }
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_string();
            }
            seen.push_str(&line);
        };
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        let cdp = Cdp::connect(&url);
        Browser {
            child,
            cdp,
            _profile: profile,
        }
    }

    /// A new tab, attached so that commands with its session id go to it.
    fn new_page(&mut self) -> Page<'_> {
        let target = self
            .cdp
            .call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.cdp.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let mut page = Page {
            cdp: &mut self.cdp,
            session,
        };
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.cdp.send(None, "Browser.close", json!({}));
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DevTools protocol over one WebSocket: `{id, method, params[, sessionId]}` out, the
/// answer with the same `id` back; events that arrive in between are kept in `events`.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(url, stream).expect("DevTools handshake");
        Cdp {
            ws,
            next_id: 0,
            events: Vec::new(),
        }
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to DevTools");
        self.next_id
    }

    /// The next event called `method` (of any session), kept or still to come.
    fn next_event(&mut self, method: &str) -> Value {
        if let Some(at) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(at);
        }
        loop {
            let msg = match self.ws.read() {
                Ok(Message::Text(t)) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
                Ok(_) => continue,
                Err(e) => panic!("no {method} event: {e}"),
            };
            if msg["method"] == method {
                return msg;
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
    }

    /// Sends a command and waits for its answer; a protocol error fails the test.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.send(session, method, params);
        let until = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < until, "no answer to {method}");
            let msg = match self.ws.read().expect("read from DevTools") {
                Message::Text(t) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
                Message::Close(_) => panic!("DevTools closed the connection during {method}"),
                _ => continue,
            };
            if msg["id"] == id {
                if let Some(e) = msg.get("error") {
                    panic!("{method} failed: {e}");
                }
                return msg["result"].clone();
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
    }
}

/// One tab.
struct Page<'a> {
    cdp: &'a mut Cdp,
    session: String,
}

impl Page<'_> {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.cdp.call(Some(&self.session), method, params)
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("{expr} threw: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy; returns how long that took.
    fn wait_until(&mut self, what: &str, expr: &str) -> Duration {
        let start = Instant::now();
        loop {
            let v = self.eval(&format!("!!({expr})"));
            if v == json!(true) {
                return start.elapsed();
            }
            assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Loads `url` and waits for the document to be complete.
    fn open(&mut self, url: &str) -> Duration {
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_until(
            &format!("{url} to load"),
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                json!(url)
            ),
        );
        start.elapsed()
    }

    /// The viewport as a phone (390 px wide, touch) or a desktop window.
    fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// The page's full layout width in CSS pixels.
    fn scroll_width(&mut self) -> u64 {
        self.eval("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
            .as_u64()
            .unwrap()
    }

    /// Elements reaching past `width`, for the failure message.
    fn overflowing(&mut self, width: u32) -> Value {
        self.eval(&format!(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width}.5)\
             .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).replace(/ /g, '.') : '') + ' ' + Math.round(e.getBoundingClientRect().right))"
        ))
    }

    fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(shot["data"].as_str().unwrap())
    }
}

/// Standard base64 (what `Page.captureScreenshot` returns).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let produced = chunk.len() * 6 / 8;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    out
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
    let server = Server::start();
    let started = Instant::now();
    let mut browser = Browser::launch(&chromium);
    let launch = started.elapsed();
    let mut page = browser.new_page();
    page.viewport(1280, 900, false);

    // Until the API answers, the page says it is loading (the API's requests are held back
    // by the browser here, so the first paint can be looked at).
    page.call(
        "Fetch.enable",
        json!({"patterns": [{"urlPattern": "*/api/v2/*"}]}),
    );
    let load = page.open(&server.url("/dashboard"));
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
    server.ingest(&order(
        "LIVE-1001",
        "Walnut desk",
        "$249.00",
        "ana@example.com",
    ));
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
    let dead = server.ingest("{not json");
    let before = server.wait_status(dead, "dead");
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
        let m = server.get_json(&format!("/api/v2/webhooks/logs/{dead}"));
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
    println!(
        "browser timings: chromium launch {launch:.2?}, /dashboard load {load:.2?}, API answers -> data shown {first_data:.2?}, \
         WebSocket live {live:.2?}, order posted -> shown {order_shown:.2?}, \
         dead letter posted -> shown {dead_shown:.2?}, Retry click -> requeued and run again {retry_done:.2?} (finished again at {})",
        detail["processed_at"]
    );
}

#[test]
fn pages_fit_a_390px_phone_and_screenshots() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let server = Server::start();
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
        server.ingest(&order(n, product, price, email));
    }
    let dead = server.ingest(r#"{"embeds":[{"description":"Product\nMystery box"}]}"#);
    server.wait_status(dead, "dead");

    let mut browser = Browser::launch(&chromium);
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
        let load = page.open(&server.url(path));
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
    page.open(&server.url("/dashboard"));
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
    page.open(&server.url("/dashboard"));
    page.wait_until("the dashboard's first data", DASHBOARD_LOADED);
    page.wait_until(
        "the live event stream to connect",
        "document.querySelector('#ws-state').textContent === 'live'",
    );
    // One more order while the page is open, so the live feed has something to show.
    server.ingest(&order(
        "A-10026",
        "Leather card holder",
        "$35.00",
        "sam.lee@example.com",
    ));
    page.wait_until(
        "the new order in the table and the feed",
        "document.querySelector('#orders').textContent.includes('A-10026') && document.querySelector('#feed').textContent.includes('A-10026')",
    );
    keep_screenshot("dashboard.png", &page.screenshot());
    println!("{}", report.join("; "));
}
