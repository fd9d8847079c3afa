//! Tests that run a real component beside hookvault (nginx, caddy, sshd, promtool, Chromium,
//! PostgreSQL ...) ask [`require`] first. On a developer's machine a missing component skips the
//! test with one line saying what to install; under `CI=true` `.ci/run` has installed it, so its
//! absence is a failure, never a silent pass.

use std::path::{Path, PathBuf};

/// True when `CI=true`: every real component must be present.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Where an executable is: an absolute path as given, else the first match on `PATH` (and the
/// sbin directories, which a non-login root shell may lack).
fn find(tool: &str) -> Option<PathBuf> {
    let direct = Path::new(tool);
    if direct.is_absolute() {
        return direct.is_file().then(|| direct.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The tool to run: the path in `env_var` when it is set (the variable must not start with
/// `HOOKVAULT_`: the server reads those as settings), else the first of `names` found, else the
/// first name (so [`require`] reports it missing).
pub fn tool(env_var: &str, names: &[&str]) -> String {
    if let Ok(path) = std::env::var(env_var) {
        return path;
    }
    names
        .iter()
        .find(|n| find(n).is_some())
        .or(names.first())
        .expect("at least one name")
        .to_string()
}

/// True when every tool is found. Otherwise prints `skipped: <test>: <why>` and returns false,
/// or panics under `CI=true`.
pub fn require(tools: &[&str], why: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(&format!("{} not found ({why})", missing.join(", ")))
}

/// For a requirement that is not an executable (a reachable server, a built cross binary):
/// prints the reason and returns false, or panics under `CI=true`.
pub fn skip_or_fail(reason: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if in_ci() {
        panic!("{test}: {reason}; CI=true requires it (.ci/run installs it)");
    }
    eprintln!("skipped: {test}: {reason}");
    false
}
