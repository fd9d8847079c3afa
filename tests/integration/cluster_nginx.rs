//! The nginx upstream example of docs/cluster.md (`deploy/nginx/cluster-upstream.conf`), run
//! for real: nginx in front of two nodes on one PostgreSQL database spreads webhooks over
//! both, and when one node is killed every later webhook still gets its 2xx from the other.
//! Needs nginx (Debian package `nginx`); without it the test skips with a reason, except under
//! `CI=true`, where `.ci/run` installs it.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{order_body, pg_or_skip, require, Binary, Hookvault, Http, PgDb};

/// nginx, wherever Debian put it.
fn nginx() -> Option<PathBuf> {
    if !require(&["nginx"], "Debian package nginx") {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example's upstream block with its node lines pointed at `nodes`.
fn upstream(nodes: &[&str]) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/cluster-upstream.conf"),
    )
    .unwrap();
    let mut out = String::new();
    let mut replaced = 0;
    for line in text.lines() {
        if line.trim_start().starts_with("server 10.0.0.") {
            if let Some(addr) = nodes.get(replaced) {
                out.push_str(&line.replace(line.split_whitespace().nth(1).unwrap(), addr));
                out.push('\n');
            }
            replaced += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        replaced >= nodes.len(),
        "the example has {replaced} node lines"
    );
    out
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(bin: &Path, dir: &Path, port: u16, nodes: &[&str]) -> Nginx {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n{}\n  server {{\n    listen 127.0.0.1:{port};\n    \
         location / {{\n      proxy_pass http://hookvault;\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n      proxy_next_upstream error timeout;\n      \
         proxy_connect_timeout 2s;\n    }}\n  }}\n}}\n",
        upstream(nodes)
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(child)
}

fn node(db: &PgDb, id: &str) -> Binary {
    Hookvault::new()
        .postgres(db, id)
        // The killed node's leased work is taken over quickly.
        .settings(|s| s.queue.lease_s = 2)
        .spawn()
}

#[test]
fn nginx_spreads_webhooks_over_the_nodes_and_skips_a_dead_one() {
    let Some(bin) = nginx() else { return };
    let pg = pg_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let mut a = node(&pg, "a");
    let b = node(&pg, "b");
    let addr = |n: &Binary| n.http.base.trim_start_matches("http://").to_string();
    let (addr_a, addr_b) = (addr(&a), addr(&b));
    let port = free_port();
    let _nginx = start_nginx(&bin, dir.path(), port, &[&addr_a, &addr_b]);
    let edge = Http::new(format!("127.0.0.1:{port}").parse().unwrap());

    let mut ids = Vec::new();
    for n in 0..20 {
        let answer = edge.ingest(&order_body(n));
        assert_eq!(answer.status, 200, "{}", answer.text);
        ids.push(answer.json["id"].as_i64().unwrap());
    }
    // Both nodes took webhooks: each node's own ack latency histogram counts its acks.
    let acks = |h: &Http| h.get("/metrics").text;
    for (name, n) in [("a", &a), ("b", &b)] {
        let metrics = acks(&n.http);
        let line = metrics
            .lines()
            .find(|l| l.starts_with("hookvault_ack_latency_seconds_count"))
            .unwrap_or_else(|| panic!("no ack count on {name}: {metrics}"));
        let count: f64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!(count >= 5.0, "node {name} acknowledged only {count} of 20");
    }

    a.kill9();
    for n in 20..40 {
        let answer = edge.ingest(&order_body(n));
        assert_eq!(answer.status, 200, "after the kill: {}", answer.text);
        ids.push(answer.json["id"].as_i64().unwrap());
    }
    // The other node's share of the totals reaches b's stats within a second or so.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = b.http.stats();
        if stats["total_orders"] == 40 && stats["queue_size"] == 0 {
            break;
        }
        assert!(Instant::now() < until, "not all 40 processed: {stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in ids {
        assert_eq!(b.http.status_of(id), "processed");
    }
}
