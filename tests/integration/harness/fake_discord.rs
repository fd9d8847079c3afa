//! A local fake Discord for the relay's tests: `POST /api/webhooks/{id}/{token}` answered as
//! Discord answers, with its rate limits enforced (a bucket per webhook: `limit` requests per
//! `window`, `X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket` on every answer, `429`
//! with `Retry-After` and a `retry_after` float JSON body past it, `X-RateLimit-Global` when
//! the global limit is hit), unknown webhooks as `404` code 10015, and scripted failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tiny_http::{Header, Response, Server};

/// One request the fake took (accepted or not).
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook: String,
    pub token: String,
    pub query: String,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// Every request header, as sent (names as the client spelled them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub at: Instant,
}

impl Received {
    /// The value of request header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Received>,
    /// Per webhook: when its window started and how many it took in it.
    windows: HashMap<String, (Instant, u32)>,
    deleted: Vec<String>,
    /// Per webhook: statuses to answer next, in order.
    scripted: HashMap<String, Vec<u16>>,
    global_hits: u32,
    /// Webhooks whose requests are held unanswered until released.
    held: Vec<String>,
    /// Requests being held right now.
    holding: usize,
}

/// The fake's rate limit: `limit` per `window` per webhook; `None`: no limit.
#[derive(Clone, Copy)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

pub struct FakeDiscord {
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDiscord {
    /// Starts on an ephemeral loopback port, `threads` handler threads.
    pub fn start(limit: Option<Limit>, threads: usize) -> FakeDiscord {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("fake discord binds"));
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let handlers: Vec<JoinHandle<()>> = (0..threads.max(1))
            .map(|_| {
                let (server, state, stop) = (server.clone(), state.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Relaxed) {
                        if let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(50)) {
                            answer(req, &state, limit, &stop);
                        }
                    }
                })
            })
            .collect();
        let thread = std::thread::spawn(move || {
            for h in handlers {
                let _ = h.join();
            }
        });
        FakeDiscord {
            base,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request taken so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The bodies accepted (2xx) for `webhook`, in arrival order.
    pub fn accepted(&self, webhook: &str) -> Vec<Vec<u8>> {
        self.requests()
            .into_iter()
            .filter(|r| r.webhook == webhook && (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }

    pub fn count_status(&self, status: u16) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// The webhook no longer exists: `404` code 10015 until [`recreate`](Self::recreate).
    pub fn delete(&self, webhook: &str) {
        self.state.lock().unwrap().deleted.push(webhook.to_string());
    }

    pub fn recreate(&self, webhook: &str) {
        self.state.lock().unwrap().deleted.retain(|w| w != webhook);
    }

    /// The next requests to `webhook` are answered with these statuses.
    pub fn script(&self, webhook: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .insert(webhook.to_string(), statuses.to_vec());
    }

    /// Requests to `webhook` are held unanswered (in flight) until [`release`](Self::release).
    pub fn hold(&self, webhook: &str) {
        self.state.lock().unwrap().held.push(webhook.to_string());
    }

    pub fn release(&self, webhook: &str) {
        self.state.lock().unwrap().held.retain(|w| w != webhook);
    }

    /// Waits until `n` requests are being held (panics after 10 s).
    pub fn wait_holding(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.state.lock().unwrap().holding < n {
            assert!(
                Instant::now() < until,
                "{n} requests never reached the fake"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The next `n` requests (any webhook) get a global `429`.
    pub fn global_limit(&self, n: u32) {
        self.state.lock().unwrap().global_hits = n;
    }

    /// Waits until `webhook` has `n` accepted requests (panics after `limit`).
    pub fn wait_accepted(&self, webhook: &str, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        let until = Instant::now() + limit;
        loop {
            let got = self.accepted(webhook);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < until,
                "webhook {webhook}: {} of {n} accepted within {limit:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn answer(
    mut req: tiny_http::Request,
    state: &Mutex<State>,
    limit: Option<Limit>,
    stop: &AtomicBool,
) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = |name: &str| {
        req.headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let (content_type, user_agent) = (get("content-type"), get("user-agent"));
    let request_headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let _ = req.as_reader().read_to_end(&mut body);
    let (webhook, token) = match parts.as_slice() {
        ["api", "webhooks", id, token] => (id.to_string(), token.to_string()),
        _ => {
            let _ = req.respond(Response::from_string("not a webhook").with_status_code(404));
            return;
        }
    };
    let mut s = state.lock().unwrap();
    if s.held.contains(&webhook) {
        s.holding += 1;
        // A test that failed while holding drops the fake: the request is let go then.
        while s.held.contains(&webhook) && !stop.load(Relaxed) {
            drop(s);
            std::thread::sleep(Duration::from_millis(5));
            s = state.lock().unwrap();
        }
        s.holding -= 1;
    }
    let now = Instant::now();
    let mut headers = Vec::new();
    let (status, text): (u16, String) = if s.deleted.contains(&webhook) {
        (
            404,
            r#"{"message": "Unknown Webhook", "code": 10015}"#.into(),
        )
    } else if s.global_hits > 0 {
        s.global_hits -= 1;
        headers.push(header("X-RateLimit-Global", "true"));
        headers.push(header("Retry-After", "1"));
        (
            429,
            r#"{"message": "You are being rate limited.", "retry_after": 0.3, "global": true}"#
                .into(),
        )
    } else if let Some(next) = s.scripted.get_mut(&webhook).filter(|v| !v.is_empty()) {
        let status = next.remove(0);
        (
            status,
            format!(r#"{{"message": "scripted {status}", "code": 0}}"#),
        )
    } else if let Some(l) = limit {
        let window = s.windows.entry(webhook.clone()).or_insert((now, 0));
        if now.duration_since(window.0) >= l.window {
            *window = (now, 0);
        }
        let reset_after = l.window.saturating_sub(now.duration_since(window.0));
        let reset_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + reset_after;
        headers.push(header("X-RateLimit-Limit", &l.limit.to_string()));
        headers.push(header("X-RateLimit-Bucket", &format!("bucket-{webhook}")));
        headers.push(header(
            "X-RateLimit-Reset",
            &format!("{:.3}", reset_at.as_secs_f64()),
        ));
        headers.push(header(
            "X-RateLimit-Reset-After",
            &format!("{:.3}", reset_after.as_secs_f64()),
        ));
        if window.1 >= l.limit {
            headers.push(header("X-RateLimit-Remaining", "0"));
            headers.push(header(
                "Retry-After",
                &format!("{}", reset_after.as_secs().max(1)),
            ));
            (
                429,
                format!(
                    r#"{{"message": "You are being rate limited.", "retry_after": {:.3}, "global": false}}"#,
                    reset_after.as_secs_f64()
                ),
            )
        } else {
            window.1 += 1;
            headers.push(header(
                "X-RateLimit-Remaining",
                &(l.limit - window.1).to_string(),
            ));
            (204, String::new())
        }
    } else {
        (204, String::new())
    };
    let (status, text) = if status == 204 && query.contains("wait=true") {
        (
            200,
            r#"{"id": "1", "type": 0, "content": "relayed"}"#.to_string(),
        )
    } else {
        (status, text)
    };
    s.requests.push(Received {
        webhook,
        token,
        query: query.to_string(),
        content_type,
        user_agent,
        headers: request_headers,
        body,
        status,
        at: Instant::now(),
    });
    drop(s);
    let mut response = Response::from_string(text).with_status_code(status);
    if status != 204 {
        response = response.with_header(header("Content-Type", "application/json"));
    }
    for h in headers {
        response = response.with_header(h);
    }
    let _ = req.respond(response);
}
