//! The 32-bit Raspberry Pi OS build (`armv7-unknown-linux-gnueabihf`) runs under
//! `qemu-arm-static`: it starts, answers `/readyz`, acknowledges a webhook and processes it
//! into an order. The binary is built beforehand (cargo cannot build another target from
//! inside a test of this one):
//!
//! ```sh
//! rustup target add armv7-unknown-linux-gnueabihf
//! apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static
//! CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
//! CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc \
//!   cargo build --release --locked --target armv7-unknown-linux-gnueabihf --bin hookvault
//! ```
//!
//! Without the binary, qemu or the armhf C library the test skips with the reason; under
//! `CI=true` it fails instead, since `.ci/run` builds and installs all three.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "armv7-unknown-linux-gnueabihf";
const QEMU: &str = "qemu-arm-static";
/// The armhf C library from Debian's libc6-armhf-cross: qemu's `-L` root for the dynamic loader.
const ARMHF_ROOT: &str = "/usr/arm-linux-gnueabihf";

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("HOOKVAULT_ARMV7_BIN") {
        return PathBuf::from(p);
    }
    // CARGO_TARGET_DIR when set, else target/ in the checkout.
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target_dir.join(TARGET).join("release/hookvault")
}

fn missing() -> Option<String> {
    let mut missing = Vec::new();
    let bin = binary();
    if !bin.exists() {
        missing.push(format!(
            "{} (build it: see tests/armv7_smoke.rs)",
            bin.display()
        ));
    }
    let qemu = Command::new(QEMU)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !qemu {
        missing.push(format!("{QEMU} (Debian: qemu-user-static)"));
    }
    if !Path::new(ARMHF_ROOT)
        .join("lib/ld-linux-armhf.so.3")
        .exists()
    {
        missing.push(format!("{ARMHF_ROOT} (Debian: libc6-armhf-cross)"));
    }
    if missing.is_empty() {
        return None;
    }
    let reason = format!("armv7_smoke: skipped: missing {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; under CI=true .ci/run must provide them");
    }
    Some(reason)
}

struct Emulated {
    child: Child,
    port: u16,
    agent: ureq::Agent,
}

impl Emulated {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        match self.agent.get(&self.url(path)).call() {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let mut text = String::new();
                let _ = resp.body_mut().as_reader().read_to_string(&mut text);
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                )
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn armv7_binary_serves_and_processes_a_webhook_under_qemu() {
    if let Some(reason) = missing() {
        eprintln!("{reason}");
        return;
    }
    let bin = binary();
    let file = Command::new("file").arg(&bin).output();
    if let Ok(out) = file {
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            said.contains("ARM") && said.contains("32-bit"),
            "not a 32-bit ARM binary: {said}"
        );
    }
    let size = std::fs::metadata(&bin).unwrap().len();
    eprintln!(
        "armv7 binary: {} bytes ({:.2} MiB)",
        size,
        size as f64 / 1024.0 / 1024.0
    );

    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = Command::new(QEMU)
        .args(["-L", ARMHF_ROOT])
        .arg(&bin)
        .arg("serve")
        .arg("--db")
        .arg(dir.path().join("armv7.db"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--ws-listen", "off", "--workers", "2"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start qemu-arm-static");
    let mut vm = Emulated {
        child,
        port,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into(),
    };
    // Emulation is slow, and CI shares its cores: a generous bound.
    let deadline = Instant::now() + Duration::from_secs(90);
    while vm.get("/readyz").0 != 200 {
        if let Some(status) = vm.child.try_wait().unwrap() {
            panic!("the armv7 binary exited with {status} under qemu");
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 90 s under qemu"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "ready under qemu after {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let body = r#"{"embeds":[{"description":"Product\nPi Zero Case\nPrice\n$7.00\nOrder Number\nARMV7-1\nEmail\npi@example.com"}]}"#;
    let resp = vm
        .agent
        .post(&vm.url("/api/v2/webhooks/orders"))
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200, "ingest under qemu");

    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let (_, stats) = vm.get("/api/v2/webhooks/queue/stats");
        if stats["total_processed"] == 1 {
            break stats;
        }
        assert!(
            Instant::now() < deadline,
            "not processed within 60 s: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stats["total_received"], 1, "{stats}");
    assert_eq!(stats["total_failed"], 0, "{stats}");
    let (status, order) = vm.get("/api/v2/orders/ARMV7-1");
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["product"], "Pi Zero Case", "{order}");
    assert_eq!(order["email"], "pi@example.com", "{order}");
    eprintln!(
        "armv7 under qemu: served, stored and processed in {:.2} s in all",
        started.elapsed().as_secs_f64()
    );
}
