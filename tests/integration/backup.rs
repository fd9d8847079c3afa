//! `hookvault backup` and `hookvault restore` as an operator runs them, against the real
//! binary: a backup taken while webhooks keep arriving holds everything acknowledged before it
//! started and serves it the same; restore refuses while an instance holds the database, and
//! otherwise puts the backup in place with the old database kept aside.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::harness::{order_body, run_cli, Binary, Hookvault};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// An order padded to about `pad` bytes, so a few hundred of them make a database of several
/// backup steps.
fn padded_order(n: u64, pad: usize) -> String {
    format!(
        r#"{{"embeds":[{{"author":{{"name":"Backup {n}"}},"description":"Product\nBackup Product {n}\nPrice\n$19.99\nOrder Number\nBK-{n}\nEmail\nb{n}@example.com"}}],"pad":"{}"}}"#,
        "y".repeat(pad)
    )
}

/// The real binary on `db`, ready.
fn serve(db: &Path) -> Binary {
    let s = Hookvault::new()
        .database(db)
        .settings(|c| c.queue.workers = 2)
        .spawn();
    s.http.wait_ready(Duration::from_secs(30));
    s
}

/// `PRAGMA integrity_check` of a file, opened read-only.
fn integrity(path: &Path) -> String {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A JSON answer without its timestamps of processing (`*_at`), which legitimately differ
/// between two servers that processed the same message.
fn without_times(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|k, _| !k.ends_with("_at"));
        for (_, inner) in map.iter_mut() {
            *inner = without_times(inner.take());
        }
    }
    v
}

/// Files in `dir` whose name contains `part`.
fn files_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(part))
        .collect()
}

#[test]
fn a_backup_during_ingest_holds_everything_acknowledged_before_it_and_serves_it_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let copy = dir.path().join("copy.db");
    let live = serve(&db);

    // ~14 MB of webhooks: several backup steps (4 MiB each), so the writer commits between them.
    let mut acked: Vec<(i64, u64)> = Vec::new();
    for n in 0..400 {
        let a = live.http.ingest(&padded_order(n, 32 * 1024));
        assert_eq!(a.status, 200, "{}", a.text);
        acked.push((a.json["id"].as_i64().unwrap(), n));
    }

    // A writer that keeps posting through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let during: Arc<Mutex<Vec<(i64, u64)>>> = Arc::default();
    let writer = {
        let (http, stop, during) = (live.http.clone(), stop.clone(), during.clone());
        std::thread::spawn(move || {
            let mut n = 100_000;
            while !stop.load(Ordering::Relaxed) {
                let a = http.ingest(&padded_order(n, 8 * 1024));
                assert_eq!(a.status, 200, "ingest during the backup: {}", a.text);
                during
                    .lock()
                    .unwrap()
                    .push((a.json["id"].as_i64().unwrap(), n));
                n += 1;
            }
        })
    };
    while during.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Everything acknowledged up to here must be in the copy.
    acked.extend(during.lock().unwrap().iter().copied());
    let out = run_cli(&["backup", "--db", path_str(&db), path_str(&copy)], &[]);
    let acked_while_copying = during.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer saw only 200s");
    assert!(
        out.status.success(),
        "backup failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        acked_while_copying > 20,
        "no webhook was acknowledged while the backup ran"
    );
    let (said, progress) = (text(&out.stdout), text(&out.stderr));
    assert!(said.contains("integrity_check ok"), "{said}");
    assert!(said.contains("orders"), "{said}");
    assert!(
        progress.contains(" pages (100.0%)") && progress.contains("MB/s"),
        "progress line: {progress}"
    );
    eprintln!(
        "backup while ingesting: {} acknowledged before, {} by the writer in all\n{said}{progress}",
        acked.len(),
        acked_while_copying
    );

    assert!(
        files_named(dir.path(), ".tmp-").is_empty(),
        "a temp file left"
    );
    assert_eq!(integrity(&copy), "ok");

    // A second server on the copy answers the same for every acknowledged message, once both
    // have processed what was queued when the copy was taken.
    live.http.wait_drained(Duration::from_secs(60));
    let restored = serve(&copy);
    restored.http.wait_drained(Duration::from_secs(60));
    for (id, n) in &acked {
        let path = format!("/api/v2/webhooks/logs/{id}");
        let (a, b) = (live.http.get(&path), restored.http.get(&path));
        assert_eq!(
            b.status, 200,
            "message {id} is missing from the copy: {}",
            b.text
        );
        assert_eq!(b.json["status"], "processed", "{}", b.text);
        assert_eq!(without_times(a.json), without_times(b.json), "message {id}");
        let path = format!("/api/v2/orders/BK-{n}");
        let (a, b) = (live.http.get(&path), restored.http.get(&path));
        assert_eq!(
            b.status, 200,
            "order BK-{n} is missing from the copy: {}",
            b.text
        );
        assert_eq!(without_times(a.json), without_times(b.json), "order BK-{n}");
    }
}

#[test]
fn restore_refuses_while_an_instance_holds_the_database_and_keeps_the_old_one_aside() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let copy = dir.path().join("nightly.db");
    let mut live = serve(&db);
    for n in 0..5 {
        assert_eq!(live.http.ingest(&order_body(n)).status, 200);
    }
    live.http.wait_drained(Duration::from_secs(30));
    let out = run_cli(&["backup", "--db", path_str(&db), path_str(&copy)], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Received after the backup: only the database moved aside will have it.
    let later = live.http.ingest(&order_body(77));
    assert_eq!(later.status, 200);
    live.http.wait_drained(Duration::from_secs(30));

    let restore = |force: bool| {
        let mut args = vec!["restore", "--db", path_str(&db), path_str(&copy)];
        if force {
            args.push("--force");
        }
        run_cli(&args, &[])
    };

    // A running serve holds the instance lock: refused with the database-in-use exit code.
    let out = restore(true);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("stop that process first") && err.contains("live.db.lock"),
        "{err}"
    );
    live.stop();

    // An instance holding the lock beside the database (as a starting one does).
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(&lock_path, "pid 4242 started 2026-12-01T00:00:00Z\n").unwrap();
    let out = restore(true);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(&lock_path.display().to_string()), "{err}");
    assert!(err.contains("pid 4242"), "{err}");
    drop(lock);

    // Stopped: without --force it says what it would do; with it, it does it.
    let out = restore(false);
    assert_eq!(out.status.code(), Some(74));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert!(files_named(dir.path(), "before-restore").is_empty());
    let out = restore(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("moved"), "{said}");
    let aside = files_named(dir.path(), ".before-restore-");
    assert_eq!(aside.len(), 1, "the old database, and only it: {aside:?}");
    assert!(said.contains(&aside[0].display().to_string()), "{said}");
    assert!(!PathBuf::from(format!("{}-wal", db.display())).exists());

    let restored = serve(&db);
    assert_eq!(restored.http.get("/api/v2/orders/TEST-3").status, 200);
    assert_eq!(restored.http.get("/api/v2/orders/TEST-77").status, 404);
    let old = serve(&aside[0]);
    assert_eq!(old.http.get("/api/v2/orders/TEST-77").status, 200);
    assert_eq!(old.http.get("/api/v2/orders/TEST-3").status, 200);
}

#[test]
fn backup_refuses_an_existing_target_a_missing_directory_and_a_damaged_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let target = dir.path().join("b.db");
    {
        let mut s = serve(&db);
        assert_eq!(s.http.ingest(&order_body(1)).status, 200);
        s.stop();
    }
    std::fs::write(&target, "an older backup").unwrap();
    let out = run_cli(&["backup", "--db", path_str(&db), path_str(&target)], &[]);
    assert_eq!(out.status.code(), Some(74));
    assert!(
        text(&out.stderr).contains("exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "an older backup");

    let out = run_cli(
        &[
            "backup",
            "--force",
            "--db",
            path_str(&db),
            path_str(&target),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(integrity(&target), "ok");

    let nowhere = dir.path().join("no-such-dir").join("b.db");
    let out = run_cli(&["backup", "--db", path_str(&db), path_str(&nowhere)], &[]);
    assert_eq!(out.status.code(), Some(74));
    assert!(
        text(&out.stderr).contains("no-such-dir") && text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );

    // A damaged file and a database from a newer hookvault are not restored.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let out = run_cli(
        &["restore", "--force", "--db", path_str(&db), path_str(&junk)],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(65),
        "a damaged file is a data error"
    );
    assert!(
        text(&out.stderr).contains("damaged"),
        "{}",
        text(&out.stderr)
    );
    let newer = dir.path().join("newer.db");
    std::fs::copy(&target, &newer).unwrap();
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let out = run_cli(
        &[
            "restore",
            "--force",
            "--db",
            path_str(&db),
            path_str(&newer),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(65),
        "a newer schema is a data error"
    );
    assert!(
        text(&out.stderr).contains("schema version 99"),
        "{}",
        text(&out.stderr)
    );
    assert!(files_named(dir.path(), "before-restore").is_empty());
    assert!(files_named(dir.path(), ".tmp-").is_empty());
}

/// A database of about `mb` MB: the real binary's schema and one message, then large bodies
/// written straight into the file (the copy does not care what the pages hold), so a backup of
/// it takes many steps.
fn large_database(db: &Path, mb: usize) {
    {
        let mut s = serve(db);
        assert_eq!(s.http.ingest(&order_body(1)).status, 200);
        s.http.wait_drained(Duration::from_secs(30));
        s.stop();
    }
    let c = Connection::open(db).unwrap();
    c.execute(
        "INSERT INTO bodies (message_id, headers, payload) \
         WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 999 + ?1) \
         SELECT i, '{}', randomblob(1024 * 1024) FROM n",
        [mb as i64],
    )
    .unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

/// `hookvault backup --db DB TARGET` started in the background, returned once it has printed
/// its first progress line (it is copying), with the rest of its stderr drained on a thread.
fn backup_under_way(db: &Path, target: &Path) -> (std::process::Child, PathBuf) {
    use std::io::{BufRead, BufReader};
    let mut child = crate::harness::command()
        .args(["backup", "--db", path_str(db), path_str(target)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hookvault backup");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a progress line").unwrap();
    assert!(first.contains(" pages ("), "not a progress line: {first}");
    assert!(
        !first.contains("(100.0%)"),
        "the copy was done at once: {first}"
    );
    std::thread::spawn(move || lines.for_each(drop));
    let tmp = PathBuf::from(format!("{}.tmp-{}", target.display(), child.id()));
    (child, tmp)
}

#[test]
fn a_killed_backup_leaves_a_temporary_that_the_next_backup_removes_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    large_database(&db, 64);

    // A backup running into the same directory throughout: its temporary is no litter.
    let (running, running_tmp) = backup_under_way(&db, &dir.path().join("manual.db"));

    // Yesterday's nightly backup, killed half-way.
    let (mut killed, left) = backup_under_way(&db, &dir.path().join("hookvault-20261130.db"));
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left_bytes = std::fs::metadata(&left)
        .unwrap_or_else(|e| panic!("{} after kill -9: {e}", left.display()))
        .len();
    assert!(left_bytes > 0, "the killed backup had written nothing");
    assert!(
        running_tmp.exists(),
        "the other backup finished too soon for this test"
    );

    // Tonight's backup into the same directory, under another name.
    let tonight = dir.path().join("hookvault-20261201.db");
    let out = run_cli(&["backup", "--db", path_str(&db), path_str(&tonight)], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("removed {}", left.display()))
            && said.contains(&format!("process {}", killed.id()))
            && said.contains("interrupted backup"),
        "the cleanup is not reported:\n{said}"
    );
    assert!(
        !left.exists(),
        "the killed backup's temporary is still there"
    );
    assert!(
        !said.contains(&running_tmp.display().to_string()),
        "a running backup's temporary was reported as stale:\n{said}"
    );
    assert_eq!(integrity(&tonight), "ok");

    // The backup that was running when the cleanup ran finishes, whole.
    let out = running.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert_eq!(integrity(&dir.path().join("manual.db")), "ok");
    assert!(
        files_named(dir.path(), ".tmp-").is_empty(),
        "temporaries left: {:?}",
        files_named(dir.path(), ".tmp-")
    );

    // Nothing stale: nothing is said about it.
    let out = run_cli(
        &[
            "backup",
            "--force",
            "--db",
            path_str(&db),
            path_str(&tonight),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("removed"),
        "{}",
        text(&out.stdout)
    );
    eprintln!("killed backup left {left_bytes} bytes; the next backup said:\n{said}");
}
