//! One lifecycle: the service starts its parts in one ordered list and stops them in reverse,
//! also when a start step fails half-way; the listeners are bound before anything else.

use std::net::TcpListener;
use std::time::Duration;

use hookvault::testing::store::Faults;
use hookvault::testing::Error;
use hookvault::StorageSettings;

use crate::harness::{free_port, order_body, Hookvault};

#[test]
fn a_start_that_fails_half_way_stops_what_it_had_started() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    let port = free_port();
    let faults = Faults::new();
    // The start's first transaction is the recovery; its second is the relay releasing this
    // node's deliveries, after the writer, the workers, the feeder, the lease keeper and the
    // retention sweeper have started (and the HTTP port is bound).
    faults.fail_every(2);
    let err = Hookvault::new()
        .database(&db)
        .settings(|s| s.server.listen = format!("127.0.0.1:{port}"))
        .faults(&faults)
        .start_refused();
    assert!(matches!(err, Error::Storage(_)), "{err}");
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!((faults.commits(), faults.failed()), (2, 1));

    // The writer was stopped and waited for before the start returned: the database is free
    // (its instance lock released) at once, and the port bound for HTTP is free again.
    let storage = StorageSettings {
        path: db.clone(),
        ..StorageSettings::default()
    };
    let (store, _reader) = hookvault::testing::store::open(&storage).expect("the database is free");
    drop(store);
    drop(TcpListener::bind(("127.0.0.1", port)).expect("the HTTP port is free"));

    // Nothing of the failed start lingers: a normal start on the same database and port works.
    let s = Hookvault::new()
        .database(&db)
        .settings(|s| s.server.listen = format!("127.0.0.1:{port}"))
        .start();
    assert_eq!(s.http.ingest(&order_body(1)).status, 200);
    let stats = s.http.wait_drained(Duration::from_secs(10));
    assert_eq!(stats["total_processed"], 1, "{stats}");
}

#[test]
fn a_taken_websocket_port_fails_the_start_before_storage_is_touched() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookvault.db");
    let listen = addr.clone();
    let err = Hookvault::new()
        .database(&db)
        .settings(move |s| s.websocket.listen = listen)
        .start_refused();
    match &err {
        Error::Bind { addr: refused, .. } => assert_eq!(*refused, addr),
        other => panic!("{other}"),
    }
    assert!(!db.exists(), "the database was not created");
}
