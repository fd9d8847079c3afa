//! Tests that need something a developer's machine may lack (sshd, qemu, systemd-analyze,
//! nginx, a browser, PostgreSQL): [`require`] says whether it is there. Missing, the test skips
//! with one line naming what is missing; under `CI=true` a missing tool fails the test instead,
//! since `.ci/run` installs everything the tests use.

use std::path::{Path, PathBuf};

/// Whether every tool in `tools` is here: a name is looked up on `PATH`, a path (anything with
/// a `/`) must be an executable file. When one is missing: prints
/// `skipped <test>: missing <tools> (<why>)` and returns false, or panics under `CI=true`.
/// `why` says what the tools are for and how to get them, e.g.
/// `"the deploy test's SSH server; Debian: apt-get install openssh-server"`.
pub fn require(tools: &[&str], why: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    let reason = format!("skipped {test}: missing {} ({why})", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; under CI=true this is a failure: .ci/run must install it");
    }
    eprintln!("{reason}");
    false
}

/// Where `tool` is: itself when it is a path to an executable file, else the first executable
/// of that name on `PATH`.
pub fn find(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return is_executable(Path::new(tool)).then(|| PathBuf::from(tool));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
