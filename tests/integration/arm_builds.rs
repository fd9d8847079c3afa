//! The Raspberry Pi release builds, one test per target, each run under qemu user emulation:
//! it starts, answers `/readyz`, acknowledges a webhook and processes it into an order. Before
//! that, the file itself is checked: the right ELF class and machine, the C library it needs
//! (the newest `GLIBC_x.y` symbol version it asks for may not exceed the minimum the README
//! states, or it must be static), and for ARMv6 the ARM architecture tag the compiler
//! recorded. `-cpu arm1176` (the Pi Zero and Pi 1 core) makes qemu refuse any ARMv7
//! instruction, so the ARMv6 run also proves the whole binary, its C library included, suits
//! those boards.
//!
//! The binaries are built beforehand by `.ci/run` (cargo cannot build another target from
//! inside a test of this one); `docs/operations.md` ("Raspberry Pi builds") has the commands.
//! A test whose binary, qemu or target C library is missing skips with the reason; under
//! `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, require, skip_or_fail, Http};

/// One release build and how to run it here.
struct ArmBuild {
    /// The Rust target (the directory under `target/`).
    triple: &'static str,
    /// An environment variable that names the binary instead of `target/<triple>/release/`.
    env: &'static str,
    qemu: &'static str,
    /// The CPU qemu emulates: the oldest Pi core the build is for.
    cpu: &'static str,
    /// `ELFCLASS32` (1) or `ELFCLASS64` (2), and `e_machine` (40 ARM, 183 AArch64).
    elf_class: u8,
    elf_machine: u16,
    /// The target's C library as Debian's cross packages install it (qemu's `-L` root, and
    /// its dynamic loader); `None` for a static binary.
    libc: Option<(&'static str, &'static str)>,
    /// The newest glibc symbol version the binary may ask for (the stated minimum); `None`: static.
    max_glibc: Option<(u32, u32)>,
    /// `Tag_CPU_arch` values `readelf -A` may report, when the architecture matters.
    cpu_arch_tags: &'static [&'static str],
}

const ARMV7: ArmBuild = ArmBuild {
    triple: "armv7-unknown-linux-gnueabihf",
    env: "ARMV7_BIN",
    qemu: "qemu-arm-static",
    // Pi 2 v1.1 and the 32-bit OS on a Pi 3, 4 or 5.
    cpu: "cortex-a7",
    elf_class: 1,
    elf_machine: 40,
    libc: Some((
        "/usr/arm-linux-gnueabihf",
        "/usr/arm-linux-gnueabihf/lib/ld-linux-armhf.so.3",
    )),
    max_glibc: Some((2, 28)),
    cpu_arch_tags: &["v7"],
};

const AARCH64: ArmBuild = ArmBuild {
    triple: "aarch64-unknown-linux-gnu",
    env: "AARCH64_BIN",
    qemu: "qemu-aarch64-static",
    // Pi 3, Zero 2 W (the oldest 64-bit Pi cores).
    cpu: "cortex-a53",
    elf_class: 2,
    elf_machine: 183,
    libc: Some((
        "/usr/aarch64-linux-gnu",
        "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
    )),
    max_glibc: Some((2, 28)),
    cpu_arch_tags: &[],
};

const ARMV6: ArmBuild = ArmBuild {
    triple: "arm-unknown-linux-musleabihf",
    env: "ARMV6_BIN",
    qemu: "qemu-arm-static",
    // Pi Zero, Zero W and Pi 1.
    cpu: "arm1176",
    elf_class: 1,
    elf_machine: 40,
    libc: None,
    max_glibc: None,
    cpu_arch_tags: &["v6", "v6KZ", "v6K"],
};

#[test]
fn armv7_build_serves_and_processes_a_webhook_under_qemu() {
    smoke(&ARMV7);
}

#[test]
fn aarch64_build_serves_and_processes_a_webhook_under_qemu() {
    smoke(&AARCH64);
}

#[test]
fn armv6_build_serves_and_processes_a_webhook_under_qemu() {
    smoke(&ARMV6);
}

fn binary(build: &ArmBuild) -> PathBuf {
    if let Ok(p) = std::env::var(build.env) {
        return PathBuf::from(p);
    }
    // CARGO_TARGET_DIR when set, else target/ in the checkout.
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target_dir.join(build.triple).join("release/hookvault")
}

/// Kills the emulated server when the test ends, however it ends.
struct Emulated(Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `readelf OPTION BIN`'s output.
fn readelf(option: &str, bin: &Path) -> String {
    let out = Command::new("readelf")
        .args([option, "-W"])
        .arg(bin)
        .output()
        .expect("run readelf");
    assert!(out.status.success(), "readelf {option} {}", bin.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `GLIBC_x.y[.z]` symbol version in `readelf --dyn-syms` output, as (x, y).
fn glibc_versions(dyn_syms: &str) -> Vec<(u32, u32)> {
    let mut found: Vec<(u32, u32)> = dyn_syms
        .split(|c: char| c.is_whitespace() || c == '@' || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The file checks: ELF class and machine, the C library it needs, the ARM architecture tag.
fn check_file(build: &ArmBuild, bin: &Path) {
    let bytes = std::fs::read(bin).unwrap();
    assert_eq!(
        &bytes[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        bin.display()
    );
    assert_eq!(bytes[4], build.elf_class, "ELF class of {}", bin.display());
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    assert_eq!(
        machine,
        build.elf_machine,
        "ELF machine of {}",
        bin.display()
    );

    let headers = readelf("-l", bin);
    let versions = glibc_versions(&readelf("--dyn-syms", bin));
    match build.max_glibc {
        Some(max) => {
            assert!(
                headers.contains("Requesting program interpreter"),
                "{} is not dynamically linked",
                bin.display()
            );
            let newest = *versions
                .last()
                .unwrap_or_else(|| panic!("no GLIBC_ symbol versions in {}", bin.display()));
            assert!(
                newest <= max,
                "{} needs glibc {}.{}, newer than the stated {}.{}",
                bin.display(),
                newest.0,
                newest.1,
                max.0,
                max.1
            );
            eprintln!(
                "{}: newest glibc symbol version GLIBC_{}.{} (stated minimum {}.{})",
                build.triple, newest.0, newest.1, max.0, max.1
            );
        }
        None => {
            assert!(
                !headers.contains("Requesting program interpreter") && versions.is_empty(),
                "{} should be static but asks for a loader or glibc {versions:?}",
                bin.display()
            );
            eprintln!("{}: static, no C library needed", build.triple);
        }
    }
    if !build.cpu_arch_tags.is_empty() {
        let attrs = readelf("-A", bin);
        let tag = attrs
            .lines()
            .find_map(|l| l.trim().strip_prefix("Tag_CPU_arch:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no Tag_CPU_arch in {}:\n{attrs}", bin.display()));
        assert!(
            build.cpu_arch_tags.contains(&tag),
            "{}: Tag_CPU_arch {tag}, expected one of {:?}",
            bin.display(),
            build.cpu_arch_tags
        );
    }
}

fn smoke(build: &ArmBuild) {
    let mut tools = vec![build.qemu, "readelf"];
    if let Some((_, loader)) = build.libc {
        tools.push(loader);
    }
    if !require(
        &tools,
        "runs the Raspberry Pi builds; Debian: apt-get install qemu-user-static binutils \
         libc6-armhf-cross libc6-arm64-cross",
    ) {
        return;
    }
    let bin = binary(build);
    if !bin.exists() {
        skip_or_fail(&format!(
            "{} not built (.ci/run builds it; docs/operations.md has the command)",
            bin.display()
        ));
        return;
    }
    check_file(build, &bin);
    let size = std::fs::metadata(&bin).unwrap().len();
    eprintln!(
        "{}: {} bytes ({:.2} MiB)",
        build.triple,
        size,
        size as f64 / 1024.0 / 1024.0
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let started = Instant::now();
    let mut cmd = Command::new(build.qemu);
    // As the harness runs hookvault: no inherited settings from a developer's shell.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(hookvault::ENV_PREFIX) {
            cmd.env_remove(name);
        }
    }
    cmd.args(["-cpu", build.cpu]);
    if let Some((root, _)) = build.libc {
        cmd.args(["-L", root]);
    }
    let child = cmd
        .arg(&bin)
        .arg("serve")
        .arg("--db")
        .arg(dir.path().join("arm.db"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--ws-listen", "off", "--workers", "2"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", build.qemu));
    let mut vm = Emulated(child);
    let http = Http::new(format!("127.0.0.1:{port}").parse().unwrap());
    // Emulation is slow, and CI shares its cores: a generous bound.
    let deadline = Instant::now() + Duration::from_secs(90);
    while http.try_get("/readyz").map(|a| a.status) != Ok(200) {
        if let Some(status) = vm.0.try_wait().unwrap() {
            panic!(
                "the {} binary exited with {status} under qemu",
                build.triple
            );
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 90 s under qemu"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{}: ready under qemu -cpu {} after {:.2} s",
        build.triple,
        build.cpu,
        started.elapsed().as_secs_f64()
    );

    let number = format!("ARM-{}", build.env);
    let body = format!(
        r#"{{"embeds":[{{"description":"Product\nPi Zero Case\nPrice\n$7.00\nOrder Number\n{number}\nEmail\npi@example.com"}}]}}"#
    );
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
    let order = http.get(&format!("/api/v2/orders/{number}"));
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.json["product"], "Pi Zero Case", "{}", order.text);
    assert_eq!(order.json["email"], "pi@example.com", "{}", order.text);
    eprintln!(
        "{} under qemu: served, stored and processed in {:.2} s in all",
        build.triple,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn glibc_versions_are_read_from_readelf_output() {
    let out = "   1: 00000000     0 FUNC    GLOBAL DEFAULT  UND memcpy@GLIBC_2.4 (2)\n   \
               2: 00000000     0 FUNC    GLOBAL DEFAULT  UND gnu_get_libc_version@GLIBC_2.28 (9)\n   \
               3: 00000000     0 FUNC    GLOBAL DEFAULT  UND stat64@GLIBC_2.33 (4)\n";
    assert_eq!(glibc_versions(out), vec![(2, 4), (2, 28), (2, 33)]);
}
