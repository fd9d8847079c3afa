//! `/metrics` as Prometheus's own linter sees it: the real binary serves a few webhooks (an
//! order, a duplicate, a body that goes to dead letters) so the counters, gauges and
//! histograms all carry samples, and `promtool check metrics` must accept the exposition.
//!
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it). Without it the
//! test skips with a note, except under `CI=true`, where a missing tool is a failure.
//! `PROMTOOL_BIN` names the binary when it is not on `PATH`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `CI=true`: a missing third-party tool fails the test instead of skipping it.
fn tools_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The tool named by `env_var`, else `name` found on `PATH`. (The variable must not start
/// with `HOOKVAULT_`: the server reads those as settings and refuses unknown ones.)
fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `hookvault serve` on an ephemeral port with a temp database, killed on drop.
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
            .args(["serve", "--listen", "127.0.0.1:0", "--ws-listen", "off"])
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

    fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    /// Waits until nothing is queued or in flight and `dead` messages are dead letters.
    fn wait_settled(&self, dead: u64) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, text) = self.get("/api/v2/webhooks/queue/stats");
            let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
            if stats["queue_size"] == 0 && stats["dead_letter_queue_size"] == dead {
                return;
            }
            assert!(Instant::now() < until, "queue did not settle: {stats}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool check metrics` with `exposition` on stdin: (exit code, stdout + stderr).
fn promtool_check(promtool: &Path, exposition: &str) -> (Option<i32>, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

const ORDER: &str = r#"{"embeds":[{"author":{"name":"Test Order"},"description":"Product\nTest Product\nPrice\n$99.99\nOrder Number\nPROM-1\nEmail\nprom@example.com"}]}"#;

#[test]
fn metrics_pass_promtool_check_metrics() {
    let Some(promtool) = find_tool("PROMTOOL_BIN", "promtool") else {
        assert!(
            !tools_required(),
            "CI=true and promtool is missing (.ci/run installs Debian's prometheus package)"
        );
        eprintln!("skipped: promtool not found (apt-get install prometheus)");
        return;
    };
    let server = Server::start();
    let ingest = "/api/v2/webhooks/orders";
    let key = [("Idempotency-Key", "promtool-1")];
    assert_eq!(server.post(ingest, ORDER, &key).0, 200);
    let (status, dup) = server.post(ingest, ORDER, &key);
    assert_eq!(status, 200);
    assert!(dup.contains("duplicate"), "{dup}");
    // Not JSON: stored, then a dead letter.
    assert_eq!(server.post(ingest, "{not json", &[]).0, 200);
    server.wait_settled(1);

    let (status, exposition) = server.get("/metrics");
    assert_eq!(status, 200);
    // Every family has a sample, and the traffic above shows in the counters.
    let families: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() >= 20, "{exposition}");
    for family in &families {
        assert!(
            exposition
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(family)),
            "{family} has no sample"
        );
    }
    for sample in [
        "hookvault_webhooks_received_total 2",
        "hookvault_webhooks_duplicates_total 1",
        "hookvault_webhooks_dead_total 1",
        "hookvault_orders_created_total 1",
    ] {
        assert!(
            exposition.lines().any(|l| l == sample),
            "{sample} missing:\n{exposition}"
        );
    }

    let (code, output) = promtool_check(&promtool, &exposition);
    println!(
        "promtool check metrics: exit {code:?}, {} families\n{output}",
        families.len()
    );
    assert_eq!(
        code,
        Some(0),
        "promtool check metrics rejected /metrics:\n{output}"
    );
}
