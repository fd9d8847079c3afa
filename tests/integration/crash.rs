//! The promise under fire: the real binary is killed with SIGKILL (or stopped with SIGTERM)
//! while several clients post; after a restart on the same database every webhook that got
//! a 200 is processed, and none is stored twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::harness::{order_body, Hookvault, Http};

const SENDERS: u64 = 6;
const PER_SENDER: u64 = 800;

/// Posts from several threads until told to stop or done; returns the acknowledged ids.
fn flood(http: &Http, stop: &AtomicBool, acked_count: &AtomicUsize) -> Vec<(i64, u64)> {
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..SENDERS {
            let acked = &acked;
            scope.spawn(move || {
                for i in 0..PER_SENDER {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = t * 1_000_000 + i;
                    match http.try_post("/api/v2/webhooks/orders", order_body(n).as_bytes(), &[]) {
                        Ok(a) if a.status == 200 => {
                            acked
                                .lock()
                                .unwrap()
                                .push((a.json["id"].as_i64().unwrap(), n));
                            acked_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(a) => panic!("unexpected answer {}: {}", a.status, a.text),
                        // The server died mid-request: no 200, so no promise was made.
                        Err(_) => return,
                    }
                }
            });
        }
    });
    acked.into_inner().unwrap()
}

fn check_all_processed_once(db: &std::path::Path, acked: &[(i64, u64)]) {
    let again = Hookvault::new().database(db).spawn();
    let stats = again.http.wait_drained(Duration::from_secs(60));
    let ids: HashSet<i64> = acked.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), acked.len(), "two acks carried the same id");
    let received = stats["total_received"].as_u64().unwrap();
    assert!(
        received >= acked.len() as u64,
        "acked {} but only {received} stored: {stats}",
        acked.len()
    );
    assert_eq!(
        stats["total_processed"].as_u64().unwrap() + stats["total_failed"].as_u64().unwrap(),
        received,
        "every stored message finished exactly once: {stats}"
    );
    assert_eq!(stats["total_failed"], 0, "{stats}");
    // Every body carries its own order number: one order per stored message, none twice even
    // for messages that were processed again after the crash.
    assert_eq!(stats["total_orders"], stats["total_received"], "{stats}");
    // Every acknowledged message, one by one.
    for (id, _) in acked {
        assert_eq!(
            again.http.status_of(*id),
            "processed",
            "acknowledged message {id}"
        );
    }
}

#[test]
fn kill_9_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut server = Hookvault::new()
        .database(&db)
        .settings(|s| s.queue.workers = 2)
        .spawn();
    let stop = AtomicBool::new(false);
    let count = AtomicUsize::new(0);
    let http = server.http.clone();
    let acked = std::thread::scope(|scope| {
        let sender = scope.spawn(|| flood(&http, &stop, &count));
        while count.load(Ordering::Relaxed) < 1500 && !sender.is_finished() {
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap()
    });
    assert!(
        acked.len() >= 1500,
        "only {} acked before the kill",
        acked.len()
    );
    assert!(
        acked.len() < (SENDERS * PER_SENDER) as usize,
        "the kill came after the stream ended"
    );
    check_all_processed_once(&db, &acked);
}

#[test]
fn sigterm_mid_stream_exits_0_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("term.db");
    let mut server = Hookvault::new()
        .database(&db)
        .settings(|s| s.queue.workers = 2)
        .spawn();
    let stop = AtomicBool::new(false);
    let count = AtomicUsize::new(0);
    let http = server.http.clone();
    let (acked, status) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| flood(&http, &stop, &count));
        while count.load(Ordering::Relaxed) < 1500 && !sender.is_finished() {
            std::thread::sleep(Duration::from_millis(2));
        }
        server.sigterm();
        let status = server.wait_exit(Duration::from_secs(15));
        stop.store(true, Ordering::Relaxed);
        (sender.join().unwrap(), status)
    });
    let status = status.expect("hookvault did not exit within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(
        server.stderr().contains("stopped in"),
        "no summary line: {}",
        server.stderr()
    );
    check_all_processed_once(&db, &acked);
}

#[test]
fn a_database_from_a_newer_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("future.db");
    {
        let c = rusqlite_free_set_user_version(&db, 99);
        assert!(c, "could not prepare the database");
    }
    let out = Hookvault::new().database(&db).spawn_refused();
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 99"), "{err}");
}

/// The exit code says which kind of storage failure stopped the start: a damaged file (65:
/// restore a backup) is not a missing directory (74: the disk or the path).
#[test]
fn a_damaged_database_and_a_missing_directory_exit_with_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let out = Hookvault::new().database(&junk).spawn_refused();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("damaged"), "{err}");

    let nowhere = dir.path().join("no-such-dir").join("x.db");
    let out = Hookvault::new().database(&nowhere).spawn_refused();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
}

/// Sets `PRAGMA user_version` by writing the SQLite header field directly: a fresh database
/// file made by the binary itself, then byte 60..64 patched (big-endian), no SQL driver needed.
fn rusqlite_free_set_user_version(db: &std::path::Path, version: u32) -> bool {
    let mut s = Hookvault::new().database(db).spawn();
    s.sigterm();
    if s.wait_exit(Duration::from_secs(15)).is_none() {
        return false;
    }
    let mut bytes = std::fs::read(db).unwrap();
    bytes[60..64].copy_from_slice(&version.to_be_bytes());
    std::fs::write(db, bytes).is_ok()
}
