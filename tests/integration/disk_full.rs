//! "No 2xx, no promise" when the disk fills up: on a small tmpfs, ingest answers 503 with
//! Retry-After once SQLite cannot write, readiness says why, everything acknowledged before is
//! intact, and ingest resumes when space comes back. A backup onto a full disk fails and
//! removes its partial file.
//!
//! Needs root to mount a tmpfs: skipped with a reason elsewhere, required under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{run_cli, skip_or_fail, Hookvault};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mount(dir.to_path_buf()))
    } else {
        Err(format!(
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A small tmpfs at `dir`, or None (with the reason printed) where this is not root; under
/// `CI=true` no mount is a failure.
fn mount_or_skip(dir: &Path, size: &str) -> Option<Mount> {
    match mount_tmpfs(dir, size) {
        Ok(m) => Some(m),
        Err(why) => {
            skip_or_fail(&format!("needs root to mount a tmpfs ({why})"));
            None
        }
    }
}

fn padded_order(n: u64, pad: usize) -> String {
    format!(
        r#"{{"embeds":[{{"description":"Product\nDisk Filler {n}\nPrice\n$1.00\nOrder Number\nFULL-{n}\nEmail\nf{n}@example.com"}}],"pad":"{}"}}"#,
        "x".repeat(pad)
    )
}

#[test]
fn a_full_disk_answers_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_mount) = mount_or_skip(&mnt, "3m") else {
        return;
    };
    // Leave a little room after the filler; deleting it later brings space back.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024]).unwrap();

    let s = Hookvault::new()
        .database(&mnt.join("hv.db"))
        .settings(|c| c.queue.workers = 2)
        .start();
    let mut acked = Vec::new();
    let refused = loop {
        let a = s.http.ingest(&padded_order(acked.len() as u64, 16 * 1024));
        match a.status {
            200 => acked.push(a.json["id"].as_i64().unwrap()),
            _ => break a,
        }
        assert!(acked.len() < 500, "the disk never filled up");
    };
    assert!(!acked.is_empty(), "nothing fit at all");
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json["error"], "storage_unavailable");
    assert!(refused.header("Retry-After").is_some());
    assert!(refused.json["message"]
        .as_str()
        .unwrap()
        .contains("retry later"));
    let ready = s.http.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.text.contains("commit failed"), "{}", ready.text);

    std::fs::remove_file(&filler).unwrap();
    let mut resumed = None;
    for _ in 0..50 {
        let a = s.http.ingest(&padded_order(10_000, 1024));
        if a.status == 200 {
            resumed = Some(a.json["id"].as_i64().unwrap());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let resumed = resumed.expect("ingest did not resume after space came back");
    acked.push(resumed);
    s.http.wait_drained(Duration::from_secs(30));
    for id in &acked {
        assert_eq!(
            s.http.status_of(*id),
            "processed",
            "acknowledged message {id}"
        );
    }
    assert_eq!(s.http.get("/readyz").status, 200);
}

#[test]
fn a_backup_that_fills_the_disk_fails_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    {
        let mut s = Hookvault::new().database(&db).spawn();
        for n in 0..120 {
            assert_eq!(s.http.ingest(&padded_order(n, 32 * 1024)).status, 200);
        }
        s.stop();
    }
    let mnt = dir.path().join("backups");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_mount) = mount_or_skip(&mnt, "1m") else {
        return;
    };
    let target = mnt.join("nightly.db");
    let out = run_cli(
        &[
            "backup",
            "--db",
            db.to_str().unwrap(),
            target.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&mnt).unwrap().collect();
    assert!(left.is_empty(), "the partial backup was left: {left:?}");
}
