//! One hookvault per database: a second `serve`, or `reprocess` while `serve` runs, exits 75
//! naming the lock file and the process holding it; the lock goes with the process, also after
//! `kill -9`. The lock is the real file's, whatever path names it.

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

#[test]
fn a_path_through_a_symbolic_link_is_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("one.db");
    let mut first = Hookvault::new().database(&db).spawn();
    assert_eq!(first.http.ingest(r#"{"order_number":"S-1"}"#).status, 200);

    // A link to the file, and the file through a link to its directory.
    let file_link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&db, &file_link).unwrap();
    let dir_link = dir.path().join("data-link");
    std::os::unix::fs::symlink(&data, &dir_link).unwrap();
    for path in [file_link.clone(), dir_link.join("one.db")] {
        let second = Hookvault::new().database(&path).spawn_refused();
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(
            second.status.code(),
            Some(75),
            "{}: {stderr}",
            path.display()
        );
        assert!(
            stderr.contains(&format!("pid {}", first.pid())),
            "names the holder: {stderr}"
        );
        let reprocess = run_cli(&["reprocess", "--db", path.to_str().unwrap()], &[]);
        assert_eq!(reprocess.status.code(), Some(75), "{}", path.display());
    }
    assert_eq!(first.http.ingest(r#"{"order_number":"S-2"}"#).status, 200);

    // Through the link once the first has gone: the same database, both webhooks in it.
    first.stop();
    let again = Hookvault::new().database(&file_link).spawn();
    let stats = again.http.wait_drained(Duration::from_secs(10));
    assert_eq!(stats["total_received"], 2, "{stats}");
}

#[test]
fn a_database_path_that_cannot_be_resolved_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Two links naming each other: there is no file to lock.
    let a = dir.path().join("a.db");
    std::os::unix::fs::symlink("b.db", &a).unwrap();
    std::os::unix::fs::symlink("a.db", dir.path().join("b.db")).unwrap();
    let refused = Hookvault::new().database(&a).spawn_refused();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains("cannot resolve the database path") && stderr.contains("a.db"),
        "{stderr}"
    );
}
