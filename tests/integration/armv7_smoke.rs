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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, require, skip_or_fail, Http};

const TARGET: &str = "armv7-unknown-linux-gnueabihf";
const QEMU: &str = "qemu-arm-static";
/// The armhf C library from Debian's libc6-armhf-cross: qemu's `-L` root for the dynamic loader.
const ARMHF_ROOT: &str = "/usr/arm-linux-gnueabihf";
const ARMHF_LOADER: &str = "/usr/arm-linux-gnueabihf/lib/ld-linux-armhf.so.3";

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

/// Kills the emulated server when the test ends, however it ends.
struct Emulated(Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn armv7_binary_serves_and_processes_a_webhook_under_qemu() {
    if !require(
        &[QEMU, ARMHF_LOADER],
        "runs the armv7 build; Debian: apt-get install qemu-user-static libc6-armhf-cross",
    ) {
        return;
    }
    let bin = binary();
    if !bin.exists() {
        skip_or_fail(&format!(
            "{} not built (the command is at the top of this file and in .ci/run)",
            bin.display()
        ));
        return;
    }
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
    let port = free_port();
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
    let mut vm = Emulated(child);
    let http = Http::new(format!("127.0.0.1:{port}").parse().unwrap());
    // Emulation is slow, and CI shares its cores: a generous bound.
    let deadline = Instant::now() + Duration::from_secs(90);
    while http.try_get("/readyz").map(|a| a.status) != Ok(200) {
        if let Some(status) = vm.0.try_wait().unwrap() {
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
    let resp = http.post_with(
        "/api/v2/webhooks/orders",
        body.as_bytes(),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(resp.status, 200, "ingest under qemu: {}", resp.text);

    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let stats = http.stats();
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
    let order = http.get("/api/v2/orders/ARMV7-1");
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.json["product"], "Pi Zero Case", "{}", order.text);
    assert_eq!(order.json["email"], "pi@example.com", "{}", order.text);
    eprintln!(
        "armv7 under qemu: served, stored and processed in {:.2} s in all",
        started.elapsed().as_secs_f64()
    );
}
