//! The command line as a user meets it: help, version, check-config, settings precedence, and
//! clear failures with the documented exit codes.

use crate::harness::run_cli;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_and_help() {
    let out = run_cli(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("hookvault {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run_cli(&["--help"], &[]);
    assert!(out.status.success());
    for word in [
        "serve",
        "check-config",
        "reprocess",
        "backup",
        "restore",
        "--force",
        "--listen",
        "--ws-listen",
        "--db",
        "--workers",
        "--config",
    ] {
        assert!(text(&out.stdout).contains(word), "help lacks {word}");
    }
}

#[test]
fn usage_errors_exit_64_and_say_what_to_do() {
    let out = run_cli(&[], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("hookvault serve"));
    let out = run_cli(&["serve", "--wrkers", "3"], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("--wrkers"));
}

#[test]
fn check_config_prints_the_merged_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[queue]\nworkers = 2\ncapacity = 77\n[server]\nadmin_token = \"hunter2\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run_cli(
        &["check-config", "--config", f],
        &[("HOOKVAULT_QUEUE_WORKERS", "5")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: toml::Table = text(&out.stdout).parse().unwrap();
    assert_eq!(
        shown["queue"]["workers"].as_integer(),
        Some(5),
        "env beats the file"
    );
    assert_eq!(shown["queue"]["capacity"].as_integer(), Some(77));
    assert_eq!(shown["server"]["listen"].as_str(), Some("127.0.0.1:8001"));
    assert_eq!(shown["server"]["admin_token"].as_str(), Some("********"));
    assert!(!text(&out.stdout).contains("hunter2"));
}

#[test]
fn check_config_exits_1_naming_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[queue]\nwokers = 2\n").unwrap();
    let out = run_cli(&["check-config", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("queue.wokers"),
        "{}",
        text(&out.stderr)
    );
    let out = run_cli(&["check-config"], &[("HOOKVAULT_QUEUE_MAX_RETRIES", "-1")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("HOOKVAULT_QUEUE_MAX_RETRIES"),
        "{}",
        text(&out.stderr)
    );
    let out = run_cli(
        &["check-config", "--config", "/nonexistent/hookvault.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/hookvault.toml"));
}

#[test]
fn serve_refuses_bad_config_and_busy_ports_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let out = run_cli(
        &["serve", "--db", db.to_str().unwrap(), "--workers", "0"],
        &[],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("queue.workers"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_cli(
        &[
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            &addr,
            "--ws-listen",
            "off",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&addr) && text(&out.stderr).contains("--listen"));

    let out = run_cli(
        &[
            "serve",
            "--db",
            "/nonexistent-dir/x.db",
            "--listen",
            "127.0.0.1:0",
            "--ws-listen",
            "off",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(74));
    assert!(
        text(&out.stderr).contains("/nonexistent-dir"),
        "{}",
        text(&out.stderr)
    );
}
