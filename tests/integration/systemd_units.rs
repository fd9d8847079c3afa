//! The units in `systemd/` pass `systemd-analyze verify`: every key known, every section
//! right, the timer pointing at a service that loads. The binary path in them is pointed at the
//! freshly built hookvault (verify insists that commands exist); nothing is installed.
//!
//! Needs `systemd-analyze` (Debian's systemd); skipped without it, except under `CI=true`.

use std::path::Path;
use std::process::Command;

use crate::harness::require;

#[test]
fn units_pass_systemd_analyze_verify() {
    if !require(
        &["systemd-analyze"],
        "verifies the units in systemd/; Debian: apt-get install systemd",
    ) {
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/hookvault", env!("CARGO_BIN_EXE_hookvault"));
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        units.push(copy);
    }
    units.sort();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "hookvault.service",
        "hookvault-backup.service",
        "hookvault-backup.timer",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "systemd/{expected} missing"
        );
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    // verify only warns about an unknown key or a bad value; any word about our units fails.
    let about_ours: Vec<&str> = said
        .lines()
        .filter(|l| names.iter().any(|n| l.contains(n.as_str())))
        .collect();
    assert!(
        about_ours.is_empty(),
        "systemd-analyze verify complains:\n{}",
        about_ours.join("\n")
    );
}
