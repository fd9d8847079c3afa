//! The deliveries' rules, on SQLite (PostgreSQL runs them in
//! `tests/integration/relay_cluster.rs`).

use crate::store::delivery::{
    AttemptResult, DeliveryQuery, DeliveryState, NewDelivery, Taken, TargetKind,
};

use crate::store::delivery_reads::deliveries;

use crate::store::model::{DeadDeliveries, DeliveryNext, Lease, NewMessage, OpOutcome, WriteOp};

use crate::store::seam::WriteStore;

use crate::store::sqlite;

const TARGET: &str = "http://127.0.0.1:9/api/webhooks/1/secret-token";

fn delivery() -> NewDelivery {
    NewDelivery {
        target: TARGET.into(),
        kind: TargetKind::Discord,
        content_type: Some("application/json".into()),
        headers_json: "{}".into(),
        body: None,
    }
}

fn message_with_delivery(n: u8) -> WriteOp {
    WriteOp::Append(NewMessage {
        received_at_ms: 1,
        source: "discord".into(),
        path: "/api/webhooks/1/***".into(),
        remote_addr: None,
        headers_json: "{}".into(),
        payload: vec![b'0' + n],
        idem_key: None,
        deliveries: vec![delivery()],
    })
}

fn lease(owner: &str) -> Lease {
    Lease {
        owner: owner.into(),
        duration_ms: 30_000,
    }
}

fn take(w: &mut dyn WriteStore, owner: &str, now: i64) -> Taken {
    let op = WriteOp::TakeDeliveries {
        target: TARGET.into(),
        limit: 1,
        lease: lease(owner),
    };
    match w.commit_batch(&[op], now).unwrap().0.remove(0) {
        OpOutcome::Taken(t) => t,
        other => panic!("{other:?}"),
    }
}

fn outcome(id: i64, attempt: u32, status: u16, next: DeliveryNext) -> WriteOp {
    WriteOp::DeliveryOutcome {
        id,
        attempt,
        result: AttemptResult {
            status: Some(status),
            latency_ms: 3,
            error: None,
        },
        next,
    }
}

fn tickets(t: Taken) -> Vec<(i64, u32, Vec<u8>)> {
    match t {
        Taken::Tickets(t) => t.into_iter().map(|t| (t.id, t.attempt, t.body)).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deliveries_go_in_order_one_at_a_time_and_a_backoff_holds_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
    let (_, delta) = w
        .commit_batch(&[message_with_delivery(1), message_with_delivery(2)], 1)
        .unwrap();
    assert_eq!(delta.deliveries_owed, 2);
    // The message's body is the delivery's; one in flight per target.
    assert_eq!(tickets(take(&mut w, "a", 10)), vec![(1, 1, b"1".to_vec())]);
    assert_eq!(tickets(take(&mut w, "a", 10)), vec![]);
    // A retry due later holds the one behind it.
    w.commit_batch(&[outcome(1, 1, 500, DeliveryNext::RetryAt(1_000))], 20)
        .unwrap();
    assert_eq!(take(&mut w, "a", 30), Taken::DueAt(1_000));
    assert_eq!(
        tickets(take(&mut w, "a", 1_000)),
        vec![(1, 2, b"1".to_vec())]
    );
    let (outcomes, delta) = w
        .commit_batch(&[outcome(1, 2, 204, DeliveryNext::Delivered)], 1_001)
        .unwrap();
    assert!(matches!(outcomes[0], OpOutcome::DeliveryRecorded { .. }));
    assert_eq!((delta.deliveries_owed, delta.deliveries_delivered), (-1, 1));
    // An outcome for an attempt that is not the one sending does nothing.
    let (outcomes, _) = w
        .commit_batch(&[outcome(1, 2, 204, DeliveryNext::Delivered)], 1_002)
        .unwrap();
    assert_eq!(outcomes[0], OpOutcome::NotApplicable { state: None });
    assert_eq!(
        tickets(take(&mut w, "a", 1_003)),
        vec![(2, 1, b"2".to_vec())]
    );

    let listed = deliveries(
        &r,
        &DeliveryQuery {
            limit: 10,
            ..DeliveryQuery::default()
        },
    )
    .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|d| d.target == "http://127.0.0.1:9/api/webhooks/1/***"));
    assert_eq!(listed[1].state, DeliveryState::Delivered);
    assert_eq!(listed[0].state, DeliveryState::Pending);
}

#[test]
fn another_nodes_live_lease_keeps_the_target_and_a_dead_one_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
    w.commit_batch(&[message_with_delivery(1)], 1).unwrap();
    assert_eq!(tickets(take(&mut w, "a", 10)).len(), 1);
    // Node b: the lease of a holds until it runs out (30 s after the take).
    assert_eq!(take(&mut w, "b", 20), Taken::HeldElsewhere);
    // Then b takes over, and what a was sending is owed again (its second attempt).
    assert_eq!(
        tickets(take(&mut w, "b", 40_000)),
        vec![(1, 2, b"1".to_vec())]
    );
}

/// A take-over owes again everything the last holder was sending, by nobody: only a
/// `sending` delivery names a node (`hookvault check` holds the rows to that).
#[test]
fn a_taken_over_delivery_left_owed_names_no_node() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (mut w, _r) = sqlite::open(&db, 1).unwrap();
    w.commit_batch(&[message_with_delivery(1), message_with_delivery(2)], 1)
        .unwrap();
    let two_at_once = WriteOp::TakeDeliveries {
        target: TARGET.into(),
        limit: 2,
        lease: lease("a"),
    };
    match w.commit_batch(&[two_at_once], 10).unwrap().0.remove(0) {
        OpOutcome::Taken(t) => assert_eq!(tickets(t).len(), 2),
        other => panic!("{other:?}"),
    }
    // b takes over with room for one: the other is owed again and not sent yet.
    assert_eq!(tickets(take(&mut w, "b", 40_000)).len(), 1);
    let rows: Vec<(String, Option<String>)> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT state, lease_owner FROM deliveries ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("sending".to_string(), Some("b".to_string())),
            ("pending".to_string(), None)
        ]
    );
}

const GONE: &str = "target dead: 404 Unknown Webhook";

fn died(id: i64, error: &str) -> DeadDeliveries {
    DeadDeliveries {
        label: "http://127.0.0.1:9/api/webhooks/1/***".into(),
        error: error.into(),
        first_id: id,
        count: 1,
    }
}

#[test]
fn a_target_that_died_elsewhere_takes_the_queue_it_finds_at_the_next_take() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (mut w, _r) = sqlite::open(&db, 1).unwrap();
    let three: Vec<WriteOp> = (1..=3).map(message_with_delivery).collect();
    w.commit_batch(&three, 1).unwrap();
    tickets(take(&mut w, "a", 10));
    w.commit_batch(&[outcome(1, 1, 204, DeliveryNext::Delivered)], 11)
        .unwrap();
    // Another node's request found the target gone, before it saw these two.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE relay_targets SET dead_reason = '404 Unknown Webhook', dead_at = 12",
            [],
        )
        .unwrap();
    let op = WriteOp::TakeDeliveries {
        target: TARGET.into(),
        limit: 1,
        lease: lease("a"),
    };
    let (outcomes, delta) = w.commit_batch(&[op], 13).unwrap();
    assert_eq!(outcomes[0], OpOutcome::Taken(Taken::TargetDead));
    assert_eq!(
        (delta.deliveries_owed, delta.deliveries_dead),
        (-2, 2),
        "{delta:?}"
    );
    assert_eq!(
        delta.deliveries_died,
        [DeadDeliveries {
            count: 2,
            ..died(2, GONE)
        }]
    );
}

#[test]
fn a_dead_target_takes_its_queue_with_it_until_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
    w.commit_batch(&[message_with_delivery(1), message_with_delivery(2)], 1)
        .unwrap();
    tickets(take(&mut w, "a", 10));
    let gone = DeliveryNext::TargetDead {
        reason: "404 Unknown Webhook".into(),
    };
    let mut killing = outcome(1, 1, 404, gone);
    if let WriteOp::DeliveryOutcome { result, .. } = &mut killing {
        result.error = Some("404: Unknown Webhook".into());
    }
    let (outcomes, delta) = w.commit_batch(&[killing], 20).unwrap();
    match &outcomes[0] {
        OpOutcome::DeliveryRecorded { label } => assert!(!label.contains("secret-token")),
        other => panic!("{other:?}"),
    }
    assert_eq!((delta.deliveries_owed, delta.deliveries_dead), (-2, 2));
    // The one answered, and the one its target took with it.
    assert_eq!(
        delta.deliveries_died,
        [died(1, "404: Unknown Webhook"), died(2, GONE)]
    );
    // New deliveries to a dead target are dead at once (and said to be); nothing is taken.
    let (_, delta) = w
        .commit_batch(&[message_with_delivery(3), message_with_delivery(4)], 30)
        .unwrap();
    assert_eq!(delta.deliveries_dead, 2);
    assert_eq!(
        delta.deliveries_died,
        [DeadDeliveries {
            count: 2,
            ..died(3, GONE)
        }]
    );
    assert!(delta.owed_by_target.is_empty(), "never owed: {delta:?}");
    assert_eq!(take(&mut w, "a", 40), Taken::TargetDead);

    let retry = WriteOp::RetryDeliveries {
        id: None,
        actor: "test".into(),
    };
    let (outcomes, delta) = w.commit_batch(&[retry], 50).unwrap();
    assert_eq!(outcomes[0], OpOutcome::Changed(4));
    assert_eq!((delta.deliveries_owed, delta.deliveries_dead), (4, -4));
    assert!(delta.deliveries_died.is_empty());
    assert_eq!(
        delta
            .owed_by_target
            .get("http://127.0.0.1:9/api/webhooks/1/***"),
        Some(&4)
    );
    assert_eq!(tickets(take(&mut w, "a", 60)), vec![(1, 1, b"1".to_vec())]);
    let dead = deliveries(
        &r,
        &DeliveryQuery {
            limit: 10,
            state: Some(DeliveryState::Dead),
            ..DeliveryQuery::default()
        },
    )
    .unwrap();
    assert!(dead.is_empty());
}

#[test]
fn a_rate_limit_gives_its_attempt_back_and_the_figures_follow_each_target() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, r) = sqlite::open(&dir.path().join("t.db"), 1).unwrap();
    let label = "http://127.0.0.1:9/api/webhooks/1/***";
    let (_, delta) = w.commit_batch(&[message_with_delivery(1)], 1).unwrap();
    assert_eq!(delta.owed_by_target.get(label), Some(&1));
    assert_eq!(tickets(take(&mut w, "a", 10)), vec![(1, 1, b"1".to_vec())]);
    let (_, delta) = w
        .commit_batch(&[outcome(1, 1, 429, DeliveryNext::RateLimited(20))], 11)
        .unwrap();
    assert!(delta.owed_by_target.is_empty(), "{delta:?}");
    // Due again once the pause is over, with the same attempt.
    assert_eq!(take(&mut w, "a", 15), Taken::DueAt(20));
    assert_eq!(tickets(take(&mut w, "a", 20)), vec![(1, 1, b"1".to_vec())]);
    w.commit_batch(&[outcome(1, 1, 429, DeliveryNext::RateLimited(30))], 21)
        .unwrap();
    assert_eq!(tickets(take(&mut w, "a", 30)), vec![(1, 1, b"1".to_vec())]);
    let (_, delta) = w
        .commit_batch(&[outcome(1, 1, 204, DeliveryNext::Delivered)], 31)
        .unwrap();
    assert_eq!(delta.owed_by_target.get(label), Some(&-1));
    let d = crate::store::delivery_reads::delivery(&r, 1)
        .unwrap()
        .unwrap();
    assert_eq!(d.summary.attempts, 1);
    let statuses: Vec<Option<u16>> = d.attempts_made.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(204)]);
}
