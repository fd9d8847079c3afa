//! The PostgreSQL backend at the storage seam: the same semantics as SQLite (append, dedupe,
//! claim, complete, retry, dead, requeue, discard, purge, counters), plus what sharing adds
//! (claims two nodes race for, leases that run out, per-node counters summed, the node list,
//! events to other nodes, the schema version check).

use std::time::Duration;

use crate::harness::{pg_or_skip, PgDb};

use hookvault::testing::store::postgres::{self, PostgresOptions, PostgresReader, PostgresWriter};
use hookvault::testing::store::Order;
use hookvault::testing::store::{
    DeadLetterQuery, Lease, LogQuery, MessageState, NewMessage, OpOutcome, OrderChange, ReadStore,
    RemoteEvent, WriteOp, WriteStore,
};
use hookvault::testing::Effect;

fn open(db: &PgDb, node: &str, lease: Duration) -> (PostgresWriter, PostgresReader) {
    postgres::open(
        &PostgresOptions {
            url: db.url.clone(),
            node: node.into(),
            lease,
        },
        1,
    )
    .expect("open PostgreSQL store")
}

fn message(key: Option<&str>) -> WriteOp {
    WriteOp::Append(NewMessage {
        source: "orders".into(),
        received_at_ms: 1_000,
        path: "/api/v2/webhooks/orders".into(),
        remote_addr: Some("127.0.0.1".into()),
        headers_json: r#"{"x":"y"}"#.into(),
        payload: b"{\"a\":1}".to_vec(),
        idem_key: key.map(str::to_string),
        deliveries: Vec::new(),
    })
}

fn order(n: &str) -> Order {
    Order {
        order_number: n.into(),
        product: Some("Shoe".into()),
        amount_cents: Some(9999),
        currency: Some("USD".into()),
        email: None,
        size: None,
        site: None,
        quantity: 1,
        profile: None,
        title: None,
        fields: Default::default(),
    }
}

/// Attempt `attempt` of message `id` on node `node`, leased for `ms`.
fn claim(id: i64, attempt: u32, node: &str, ms: i64) -> WriteOp {
    WriteOp::Claim {
        id,
        attempt,
        lease: lease(node, ms),
    }
}

fn lease(node: &str, ms: i64) -> Lease {
    Lease {
        owner: node.into(),
        duration_ms: ms,
    }
}

fn one(w: &mut PostgresWriter, op: WriteOp) -> OpOutcome {
    let (mut outcomes, _) = w.commit_batch(&[op], hookvault::testing::now_ms()).unwrap();
    outcomes.remove(0)
}

fn appended(o: &OpOutcome) -> (i64, bool) {
    match o {
        OpOutcome::Appended { id, duplicate } => (*id, *duplicate),
        other => panic!("not appended: {other:?}"),
    }
}

fn state(r: &PostgresReader, id: i64) -> (MessageState, u32) {
    let m = r.message(id).unwrap().expect("message exists");
    (m.summary.status, m.summary.attempts)
}

#[test]
fn one_node_has_the_sqlite_semantics() {
    let db = pg_or_skip!();
    let (mut w, r) = open(&db, "a", Duration::from_secs(30));
    let (outcomes, delta) = w
        .commit_batch(
            &[message(Some("k1")), message(Some("k1")), message(None)],
            1,
        )
        .unwrap();
    let (first, dup) = appended(&outcomes[0]);
    assert!(!dup);
    assert_eq!(appended(&outcomes[1]), (first, true), "same key, same id");
    let (second, _) = appended(&outcomes[2]);
    assert_eq!((delta.received, delta.duplicates, delta.queued), (2, 1, 2));
    let detail = r.message(first).unwrap().unwrap();
    assert_eq!(detail.payload, b"{\"a\":1}");
    assert_eq!(detail.headers_json, r#"{"x":"y"}"#);

    // Claim, then complete with an order; the same order from another message is a duplicate.
    assert_eq!(
        one(&mut w, claim(first, 1, "a", 30_000)),
        OpOutcome::Claimed
    );
    assert_eq!(state(&r, first), (MessageState::Processing, 1));
    let done = |id, n: &str| WriteOp::Complete {
        id,
        attempt: 1,
        path: "/api/v2/webhooks/orders".into(),
        effect: Effect::Order(Box::new(order(n))),
        processing_us: 5,
    };
    match one(&mut w, done(first, "A-1")) {
        OpOutcome::Completed {
            order: Some(OrderChange::Created(o)),
        } => assert_eq!(o.order.order_number, "A-1"),
        other => panic!("{other:?}"),
    }
    // Re-deriving: the same order changes nothing; a different product updates the row.
    let rederive = |order: Order| WriteOp::Rederive { id: first, order };
    assert_eq!(
        one(&mut w, rederive(order("A-1"))),
        OpOutcome::Rederived(OrderChange::Unchanged)
    );
    let changed = Order {
        product: Some("Boot".into()),
        ..order("A-1")
    };
    assert_eq!(
        one(&mut w, rederive(changed)),
        OpOutcome::Rederived(OrderChange::Changed)
    );
    assert_eq!(
        one(&mut w, claim(second, 1, "a", 30_000)),
        OpOutcome::Claimed
    );
    assert_eq!(
        one(&mut w, done(second, "A-1")),
        OpOutcome::Completed {
            order: Some(OrderChange::Duplicate { message_id: first })
        }
    );
    assert!(r
        .message(second)
        .unwrap()
        .unwrap()
        .summary
        .note
        .unwrap()
        .contains("duplicate order"));
    assert_eq!(r.order("A-1").unwrap().unwrap().message_id, first);
    // Finished messages cannot be claimed or finished again.
    assert_eq!(
        one(&mut w, claim(first, 2, "a", 30_000)),
        OpOutcome::NotApplicable {
            state: Some(MessageState::Processed)
        }
    );

    // Retry, then dead, then an operator requeue and a discard.
    let (third, _) = appended(&one(&mut w, message(None)));
    assert_eq!(
        one(&mut w, claim(third, 1, "a", 30_000)),
        OpOutcome::Claimed
    );
    let retry = WriteOp::Retry {
        id: third,
        attempt: 1,
        error: "later".into(),
        next_attempt_at_ms: i64::MAX,
    };
    assert_eq!(one(&mut w, retry), OpOutcome::Changed(1));
    assert_eq!(state(&r, third), (MessageState::Queued, 1));
    assert!(
        r.due_jobs(0, hookvault::testing::now_ms(), 10)
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    // A stale claim (attempt 1 again) does not apply; attempt 2 does.
    assert!(matches!(
        one(&mut w, claim(third, 1, "a", 30_000)),
        OpOutcome::NotApplicable { .. }
    ));
    assert_eq!(
        one(&mut w, claim(third, 2, "a", 30_000)),
        OpOutcome::Claimed
    );
    let dead = WriteOp::Dead {
        id: third,
        attempt: 2,
        error: "bad body".into(),
    };
    assert_eq!(one(&mut w, dead), OpOutcome::Changed(1));
    let letters = r
        .dead_letters(&DeadLetterQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].last_error.as_deref(), Some("bad body"));
    assert_eq!(letters[0].attempts, 2);
    let requeue = |id| WriteOp::RequeueDead {
        id: Some(id),
        actor: "test".into(),
    };
    assert_eq!(one(&mut w, requeue(third)), OpOutcome::Changed(1));
    assert_eq!(state(&r, third), (MessageState::Queued, 0));
    assert_eq!(
        one(&mut w, requeue(third)),
        OpOutcome::NotApplicable {
            state: Some(MessageState::Queued)
        }
    );
    assert_eq!(
        r.due_jobs(0, hookvault::testing::now_ms(), 10).unwrap()[0].id,
        third
    );
    one(&mut w, claim(third, 1, "a", 30_000));
    one(
        &mut w,
        WriteOp::Dead {
            id: third,
            attempt: 1,
            error: "again".into(),
        },
    );
    let discard = WriteOp::Discard {
        id: third,
        actor: "test".into(),
    };
    assert_eq!(one(&mut w, discard), OpOutcome::Changed(1));
    assert_eq!(state(&r, third).0, MessageState::Discarded);
    let actions = r.actions(third).unwrap();
    assert_eq!(
        actions
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["retry", "discard"]
    );

    // Retention deletes processed messages finished before the cut-off, bodies too.
    let purge = WriteOp::PurgeProcessed {
        finished_before_ms: i64::MAX,
        limit: 500,
    };
    assert_eq!(
        one(&mut w, purge),
        OpOutcome::Purged {
            messages: 2,
            deliveries: 0
        }
    );
    assert!(r.message(first).unwrap().is_none());
    let left: Vec<i64> = r
        .logs(&LogQuery {
            limit: 10,
            ..LogQuery::default()
        })
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![third]);

    let c = r.counters().unwrap();
    assert_eq!(
        (
            c.received,
            c.duplicates,
            c.processed,
            c.dead,
            c.retried,
            c.requeued
        ),
        (3, 1, 2, 2, 1, 1)
    );
    assert_eq!((c.discarded, c.purged, c.orders_created), (1, 2, 1));
    assert_eq!((c.queued, c.processing, c.dead_now), (0, 0, 0));
    assert_eq!(c.processing_us_total, 10);
}

#[test]
fn two_nodes_one_claim_and_leases_taken_over() {
    let db = pg_or_skip!();
    let (mut a, r) = open(&db, "a", Duration::from_millis(800));
    let (mut b, _) = open(&db, "b", Duration::from_millis(800));
    let (id, _) = appended(&one(&mut a, message(None)));
    assert_eq!(one(&mut a, claim(id, 1, "a", 800)), OpOutcome::Claimed);
    assert_eq!(
        one(&mut b, claim(id, 1, "b", 800)),
        OpOutcome::NotApplicable {
            state: Some(MessageState::Processing)
        },
        "a message runs on one node"
    );
    // Only the lease holder ends the attempt, and only the attempt it claimed.
    let done = |attempt| WriteOp::Complete {
        id,
        attempt,
        path: "/api/v2/webhooks/orders".into(),
        effect: Effect::Nothing,
        processing_us: 1,
    };
    assert!(matches!(
        one(&mut b, done(1)),
        OpOutcome::NotApplicable { .. }
    ));
    assert!(matches!(
        one(&mut a, done(2)),
        OpOutcome::NotApplicable { .. }
    ));
    // Renewed, the lease outlives its first term; not renewed, it runs out and another node's
    // tick re-queues it, and that node takes the message; the first node's late outcome is
    // then refused.
    let renewed = |o: OpOutcome| match o {
        OpOutcome::LeasesRenewed { extended, requeued } => (extended, requeued),
        other => panic!("{other:?}"),
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        renewed(one(
            &mut a,
            WriteOp::RenewLeases {
                lease: lease("a", 800),
                live: vec![id],
            }
        )),
        (1, vec![])
    );
    std::thread::sleep(Duration::from_millis(500));
    let b_tick = || WriteOp::RenewLeases {
        lease: lease("b", 800),
        live: vec![],
    };
    assert_eq!(renewed(one(&mut b, b_tick())), (0, vec![]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(renewed(one(&mut b, b_tick())), (0, vec![id]));
    assert_eq!(one(&mut b, claim(id, 2, "b", 800)), OpOutcome::Claimed);
    assert_eq!(state(&r, id), (MessageState::Processing, 2));
    assert!(matches!(
        one(&mut a, done(1)),
        OpOutcome::NotApplicable { .. }
    ));
    assert_eq!(one(&mut b, done(2)), OpOutcome::Completed { order: None });
    assert_eq!(r.counters().unwrap().leases_expired, 1);

    // Counters are per node and summed: the gauges come out right although a node's own
    // rows go negative (b finished what a received).
    let c = r.counters().unwrap();
    assert_eq!(
        (c.received, c.processed, c.queued, c.processing),
        (1, 1, 0, 0)
    );

    // A restarted node re-queues only its own leases.
    let (x, _) = appended(&one(&mut a, message(None)));
    let (y, _) = appended(&one(&mut a, message(None)));
    one(&mut a, claim(x, 1, "a", 30_000));
    one(&mut b, claim(y, 1, "b", 30_000));
    assert_eq!(
        a.recover_in_flight("a", hookvault::testing::now_ms())
            .unwrap(),
        1
    );
    assert_eq!(state(&r, x).0, MessageState::Queued);
    assert_eq!(state(&r, y).0, MessageState::Processing);
    let c = r.counters().unwrap();
    assert_eq!((c.queued, c.processing), (1, 1));

    // Both nodes are in the node list (from their writers' heartbeat) until one stops cleanly.
    assert!(r.nodes().unwrap().is_empty(), "no heartbeat yet");
    a.maintain(Duration::ZERO).unwrap();
    b.maintain(Duration::ZERO).unwrap();
    let nodes: Vec<String> = r.nodes().unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(nodes, ["a", "b"]);
    b.close().unwrap();
    let nodes: Vec<String> = r.nodes().unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(nodes, ["a"]);
}

#[test]
fn other_nodes_hear_committed_events() {
    let db = pg_or_skip!();
    let (mut a, _) = open(&db, "a", Duration::from_secs(30));
    let (tx, rx) = crossbeam_channel::unbounded();
    let config = postgres::config(&db.url, "b").unwrap();
    // Stopped when dropped, at the end of the test.
    let mut _listener = hookvault::testing::Background::new("cluster-events");
    _listener
        .spawn("pg-listen", move |stop| {
            let deliver = Box::new(move |e| {
                let _ = tx.send(e);
            });
            postgres::listen(config, "b".into(), deliver, stop)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // LISTEN is in place
    let (id, _) = appended(&one(&mut a, message(None)));
    one(&mut a, claim(id, 1, "a", 30_000));
    one(
        &mut a,
        WriteOp::Complete {
            id,
            attempt: 1,
            path: "/api/v2/webhooks/orders".into(),
            effect: Effect::Order(Box::new(order("EV-1"))),
            processing_us: 1,
        },
    );
    let next = || rx.recv_timeout(Duration::from_secs(5)).expect("an event");
    assert_eq!(next(), RemoteEvent::Received { id });
    match next() {
        RemoteEvent::OrderCreated(o) => assert_eq!(o.order.order_number, "EV-1"),
        other => panic!("{other:?}"),
    }
    // A's own listener would skip A's notices: only other nodes' events are delivered.
    let (id2, _) = appended(&one(&mut a, message(None)));
    assert_eq!(next(), RemoteEvent::Received { id: id2 });
}

#[test]
fn a_newer_schema_is_refused() {
    let db = pg_or_skip!();
    drop(open(&db, "a", Duration::from_secs(30)));
    db.client()
        .batch_execute("UPDATE hookvault_schema SET version = 99")
        .unwrap();
    let err = postgres::open(
        &PostgresOptions {
            url: db.url.clone(),
            node: "a".into(),
            lease: Duration::from_secs(30),
        },
        1,
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// The alerts' election: one session holds the advisory lock; another node cannot take it
/// while that session lives, and takes it once the session ends (a stopped or crashed node).
#[test]
fn one_node_leads_a_duty_until_its_session_ends() {
    use hookvault::testing::store::{Duty, Leadership};
    let db = pg_or_skip!();
    let config = postgres::config(&db.url, "a").unwrap();
    let mut a = postgres::AdvisoryLeader::new(config.clone(), Duty::Alerts);
    let mut b = postgres::AdvisoryLeader::new(config, Duty::Alerts);
    assert!(a.lead(), "the first to ask leads");
    assert!(!b.lead(), "a second node does not while the first lives");
    assert!(a.lead(), "the leader keeps it");
    assert!(!b.lead());
    drop(a);
    // PostgreSQL releases the lock when the session's backend ends: shortly after the close.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !b.lead() {
        assert!(
            std::time::Instant::now() < until,
            "the lead was not taken over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b.lead());
}
