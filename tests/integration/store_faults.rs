//! The fault-injecting store on both backends, at the storage seam: a commit that fails before
//! `COMMIT` keeps nothing; one whose answer is lost after a durable `COMMIT` kept everything,
//! and sending the same ops again (what the writer does) changes nothing twice; a store
//! stopped at a chosen statement keeps nothing of that batch, and the database opened again
//! afterwards is consistent.

use std::time::Duration;

use hookvault::testing::store::{
    self, FailAt, Faults, Lease, NewMessage, NodeIdentity, OpOutcome, OpenedStore, StoreError,
    WriteOp,
};
use hookvault::testing::Effect;
use hookvault::StorageSettings;

#[cfg(feature = "postgres")]
use crate::harness::pg_or_skip;

fn open(settings: &StorageSettings, faults: &Faults) -> OpenedStore {
    let node = NodeIdentity {
        id: "node-a".into(),
        lease: Duration::from_secs(30),
    };
    store::open_node(settings, &node, Some(faults.clone())).expect("open the store")
}

fn append(key: &str) -> WriteOp {
    WriteOp::Append(NewMessage {
        source: "orders".into(),
        received_at_ms: 1,
        path: "/api/v2/webhooks/orders".into(),
        remote_addr: None,
        headers_json: "{}".into(),
        payload: b"{}".to_vec(),
        idem_key: Some(key.into()),
        deliveries: Vec::new(),
    })
}

fn appended(o: &OpOutcome) -> (i64, bool) {
    match o {
        OpOutcome::Appended { id, duplicate } => (*id, *duplicate),
        other => panic!("not appended: {other:?}"),
    }
}

fn now() -> i64 {
    hookvault::testing::now_ms()
}

fn received(s: &OpenedStore) -> u64 {
    s.reader.counters().unwrap().received
}

/// Fails before COMMIT: the batch ran and rolled back.
fn before_commit(settings: &StorageSettings) {
    let faults = Faults::new();
    let mut s = open(settings, &faults);
    faults.fail_next(1);
    let e = s
        .writer
        .commit_batch(&[append("b1"), append("b2")], now())
        .unwrap_err();
    assert!(matches!(e, StoreError::DiskFull(_)), "{e:?}");
    assert_eq!(received(&s), 0, "nothing of the failed batch is kept");
    let (o, _) = s
        .writer
        .commit_batch(&[append("b1"), append("b2")], now())
        .unwrap();
    assert!(!appended(&o[0]).1 && !appended(&o[1]).1, "{o:?}");
    assert_eq!(received(&s), 2);
    assert_eq!(faults.failed(), 1);
}

/// Fails after a durable COMMIT: the caller saw an error, the database kept the batch, and the
/// same ops sent again find their work done.
fn after_commit(settings: &StorageSettings) {
    let faults = Faults::new();
    let mut s = open(settings, &faults);
    faults.fail_at(FailAt::AfterCommit);
    faults.fail_next(1);
    faults.kind(hookvault::testing::store::FaultKind::Io);
    assert!(s.writer.commit_batch(&[append("a1")], now()).is_err());
    assert_eq!(received(&s), 1, "committed although the answer was lost");
    let (o, d) = s.writer.commit_batch(&[append("a1")], now()).unwrap();
    let (id, duplicate) = appended(&o[0]);
    assert!(duplicate, "the second send finds the first");
    assert_eq!((d.received, d.duplicates), (0, 1));

    // An attempt whose outcome's answer is lost: sent again, it does not apply twice.
    let claim = WriteOp::Claim {
        id,
        attempt: 1,
        lease: Lease {
            owner: "node-a".into(),
            duration_ms: 30_000,
        },
    };
    s.writer.commit_batch(&[claim], now()).unwrap();
    let done = || WriteOp::Complete {
        id,
        attempt: 1,
        path: "/api/v2/webhooks/orders".into(),
        effect: Effect::Nothing,
        processing_us: 1,
    };
    faults.fail_next(1);
    assert!(s.writer.commit_batch(&[done()], now()).is_err());
    let (o, d) = s.writer.commit_batch(&[done()], now()).unwrap();
    assert!(
        matches!(o[0], OpOutcome::NotApplicable { .. }),
        "already completed: {o:?}"
    );
    assert_eq!(d.processed, 0);
    let c = s.reader.counters().unwrap();
    assert_eq!((c.received, c.processed, c.queued), (1, 1, 0));
}

/// Stops at the second statement of a batch, as if the process died there: that statement and
/// everything after it fails until cleared; the database opened again holds nothing of the
/// batch and is consistent.
fn stopped_half_way(settings: &StorageSettings) {
    let faults = Faults::new();
    let mut s = open(settings, &faults);
    s.writer.commit_batch(&[append("s0")], now()).unwrap();
    faults.stop_at_statement(2);
    assert!(s
        .writer
        .commit_batch(&[append("s1"), append("s2")], now())
        .is_err());
    assert!(
        s.writer.commit_batch(&[append("s3")], now()).is_err(),
        "stopped: nothing more reaches the database"
    );
    drop(s);
    let s = open(settings, &Faults::new());
    let c = s.reader.counters().unwrap();
    assert_eq!(
        (c.received, c.queued),
        (1, 1),
        "only the batch before the stop"
    );
    let logs = s
        .reader
        .logs(&hookvault::testing::store::LogQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    if settings.backend == "sqlite" {
        drop(s);
        let report = store::check(settings, false).unwrap();
        assert!(report.consistent(), "{report:?}");
    }
}

fn sqlite() -> (tempfile::TempDir, StorageSettings) {
    let dir = tempfile::tempdir().unwrap();
    let settings = StorageSettings {
        path: dir.path().join("faults.db"),
        ..Default::default()
    };
    (dir, settings)
}

#[cfg(feature = "postgres")]
fn postgres(db: &crate::harness::PgDb) -> StorageSettings {
    StorageSettings {
        backend: "postgres".into(),
        url: Some(db.url.clone()),
        ..Default::default()
    }
}

macro_rules! on_both_backends {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[test] fn $name() { let (_dir, s) = super::sqlite(); super::$name(&s) } )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $( #[test] fn $name() { let db = super::pg_or_skip!(); super::$name(&super::postgres(&db)) } )*
        }
    };
}

on_both_backends!(before_commit, after_commit, stopped_half_way);
