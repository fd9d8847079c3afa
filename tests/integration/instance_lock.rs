//! One hookvault per database: a second `serve`, or `reprocess` while `serve` runs, exits 75
//! naming the lock file and the process holding it; the lock goes with the process, also after
//! `kill -9`.

use std::time::Duration;

use crate::harness::{run_cli, Hookvault};

#[test]
fn a_second_instance_is_refused_and_kill_9_frees_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("one.db");
    let mut first = Hookvault::new().database(&db).spawn();
    assert_eq!(first.http.ingest(r#"{"order_number":"L-1"}"#).status, 200);

    let second = Hookvault::new().database(&db).spawn_refused();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "stderr: {stderr}");
    assert!(stderr.contains("one.db.lock"), "names the file: {stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "names the holder: {stderr}"
    );

    let reprocess = run_cli(&["reprocess", "--db", db.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&reprocess.stderr);
    assert_eq!(reprocess.status.code(), Some(75), "stderr: {stderr}");
    assert!(stderr.contains("in use"), "{stderr}");

    // The first one still serves: the refused ones touched nothing.
    assert_eq!(first.http.ingest(r#"{"order_number":"L-2"}"#).status, 200);

    first.kill9();
    let again = Hookvault::new().database(&db).spawn();
    let stats = again.http.wait_drained(Duration::from_secs(10));
    assert_eq!(stats["total_received"], 2, "{stats}");
}
