//! `deploy/prometheus/hookvault.rules.yml` as Prometheus sees it: `promtool check rules`
//! accepts it, `promtool test rules` runs its unit tests (the file beside it), a rule changed
//! on purpose makes those tests fail (they can fail), and every hookvault metric a rule reads
//! is one the real binary's `/metrics` serves (with a relay target owed a delivery, so the
//! per-target families are there).
//!
//! promtool comes from Debian's `prometheus` package (`.ci/run` installs it); `PROMTOOL_BIN`
//! names the binary when it is not on `PATH`. Under `CI=true` a missing one fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hookvault::{AlertEvent, AlertKind, AlertTarget};

use crate::harness::{require, tool, Hookvault};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus")
}

/// Runs promtool in `dir`: (success, stdout + stderr).
fn promtool(promtool: &str, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn have_promtool() -> Option<String> {
    let bin = tool("PROMTOOL_BIN", &["promtool"]);
    require(&[&bin], "apt-get install prometheus; or set PROMTOOL_BIN").then_some(bin)
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let Some(bin) = have_promtool() else { return };
    let dir = rules_dir();
    let (ok, out) = promtool(&bin, &dir, &["check", "rules", "hookvault.rules.yml"]);
    println!("promtool check rules:\n{out}");
    assert!(ok, "promtool check rules failed:\n{out}");
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    let (ok, out) = promtool(&bin, &dir, &["test", "rules", "hookvault.rules.test.yml"]);
    println!("promtool test rules:\n{out}");
    assert!(ok, "promtool test rules failed:\n{out}");
}

#[test]
fn the_rule_tests_fail_when_a_rule_changes() {
    let Some(bin) = have_promtool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(rules_dir().join("hookvault.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(rules_dir().join("hookvault.rules.test.yml")).unwrap();
    std::fs::write(tmp.path().join("hookvault.rules.test.yml"), tests).unwrap();
    for (from, to) in [
        (
            "hookvault_oldest_queued_age_seconds > 600",
            "hookvault_oldest_queued_age_seconds > 700",
        ),
        (
            "increase(hookvault_webhooks_dead_total[5m]) > 0",
            "increase(hookvault_webhooks_dead_total[5m]) > 6",
        ),
        ("for: 2m", "for: 5m"),
    ] {
        assert!(rules.contains(from), "{from}");
        std::fs::write(
            tmp.path().join("hookvault.rules.yml"),
            rules.replacen(from, to, 1),
        )
        .unwrap();
        let (ok, out) = promtool(
            &bin,
            tmp.path(),
            &["test", "rules", "hookvault.rules.test.yml"],
        );
        assert!(!ok, "{from} → {to} still passes:\n{out}");
    }
}

#[test]
fn every_metric_the_rules_read_is_served() {
    let rules = std::fs::read_to_string(rules_dir().join("hookvault.rules.yml")).unwrap();
    let mut names: Vec<String> = Vec::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        let mut rest = line;
        while let Some(at) = rest.find("hookvault_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    assert!(names.len() >= 5, "{names:?}");
    // A relay target with a delivery owed (an alert to a port nobody listens on), so the
    // per-target families exist too.
    let closed = crate::harness::free_port();
    let server = Hookvault::new()
        .settings(move |s| {
            s.alerts = vec![AlertTarget {
                name: "nowhere".into(),
                kind: AlertKind::Webhook,
                url: format!("http://127.0.0.1:{closed}/hook"),
                events: vec![AlertEvent::Status],
                min_interval_s: 60,
            }];
        })
        .spawn();
    assert_eq!(server.http.post("/api/v2/alerts/test", b"").status, 200);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = server.http.get("/metrics");
        assert_eq!(metrics.status, 200);
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| {
                !metrics
                    .text
                    .lines()
                    .any(|l| l.starts_with(&format!("# TYPE {name} ")))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the rules read {missing:?}, which /metrics does not serve:\n{}",
            metrics.text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
