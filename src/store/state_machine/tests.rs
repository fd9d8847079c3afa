//! The state machine's rules, on SQLite (PostgreSQL's guard is covered by
//! `tests/integration/pg_store.rs`).

use crate::store::model::{
    CounterDelta, Effect, Lease, MessageState, NewMessage, OpOutcome, WriteOp,
};

use crate::store::seam::{ReadStore, WriteStore};

use crate::store::sqlite;

fn message() -> WriteOp {
    WriteOp::Append(NewMessage {
        source: "orders".into(),
        received_at_ms: 1,
        path: "/p".into(),
        remote_addr: None,
        headers_json: "{}".into(),
        payload: b"{}".to_vec(),
        idem_key: None,
        deliveries: Vec::new(),
    })
}

fn state(reader: &dyn ReadStore, id: i64) -> (MessageState, u32) {
    let m = reader.message(id).unwrap().unwrap();
    (m.summary.status, m.summary.attempts)
}

fn lease() -> Lease {
    Lease {
        owner: "node-a:1".into(),
        duration_ms: 30_000,
    }
}

fn claim(id: i64, attempt: u32) -> WriteOp {
    WriteOp::Claim {
        id,
        attempt,
        lease: lease(),
    }
}

fn done(id: i64, attempt: u32) -> WriteOp {
    WriteOp::Complete {
        id,
        attempt,
        path: "/p".into(),
        effect: Effect::Nothing,
        processing_us: 1,
    }
}

fn retry(id: i64, attempt: u32) -> WriteOp {
    WriteOp::Retry {
        id,
        attempt,
        error: "later".into(),
        next_attempt_at_ms: 0,
    }
}

fn lease_of(db: &std::path::Path, id: i64) -> (Option<String>, Option<i64>) {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT lease_owner, lease_until FROM messages WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn claims_fold_into_the_op_that_ends_their_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (mut w, r) = sqlite::open(&db, 1).unwrap();
    w.commit_batch(&[message(), message(), message()], 1)
        .unwrap();

    // 1: claim + complete in one batch. 2: claim, retry, claim, dead in one batch.
    // 3: claim alone, completed in the next batch (not folded).
    let ops = [
        claim(1, 1),
        claim(2, 1),
        claim(3, 1),
        done(1, 1),
        retry(2, 1),
        claim(2, 2),
        WriteOp::Dead {
            id: 2,
            attempt: 2,
            error: "bad".into(),
        },
    ];
    let (outcomes, delta) = w.commit_batch(&ops, 2).unwrap();
    assert_eq!(outcomes[0], OpOutcome::Claimed);
    assert_eq!(outcomes[3], OpOutcome::Completed { order: None });
    assert_eq!(state(&r, 1), (MessageState::Processed, 1));
    assert_eq!(state(&r, 2), (MessageState::Dead, 2));
    assert_eq!(state(&r, 3), (MessageState::Processing, 1));
    assert_eq!(lease_of(&db, 3), (Some("node-a:1".into()), Some(30_002)));
    assert_eq!(
        (
            delta.queued,
            delta.processing,
            delta.processed,
            delta.dead,
            delta.retried
        ),
        (-3, 1, 1, 1, 1)
    );

    let (outcomes, _) = w.commit_batch(&[done(3, 1)], 3).unwrap();
    assert_eq!(outcomes[0], OpOutcome::Completed { order: None });
    assert_eq!(state(&r, 3), (MessageState::Processed, 1));
    assert_eq!(
        lease_of(&db, 3),
        (None, None),
        "an outcome clears the lease"
    );

    // A folded pair on a message that is not queued leaves it alone, and says so for both.
    let (outcomes, delta) = w.commit_batch(&[claim(1, 2), done(1, 2)], 4).unwrap();
    let na = OpOutcome::NotApplicable {
        state: Some(MessageState::Processed),
    };
    assert_eq!(outcomes, vec![na.clone(), na]);
    assert_eq!(delta, CounterDelta::default());
    let c = r.counters().unwrap();
    assert_eq!((c.received, c.processed, c.dead, c.retried), (3, 2, 1, 1));
}

/// The bug this guards against: a claim held back by a failed commit landed after its own
/// outcome and left the message `processing` with nobody working on it.
#[test]
fn a_claim_landing_after_its_outcome_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (mut w, r) = sqlite::open(&db, 1).unwrap();
    w.commit_batch(&[message(), message()], 1).unwrap();

    // Message 1: the outcome lands first (its claim was in a failed commit), then the claim.
    let (o, d) = w.commit_batch(&[done(1, 1)], 2).unwrap();
    assert_eq!(o[0], OpOutcome::Completed { order: None });
    assert_eq!((d.queued, d.processing, d.processed), (-1, 0, 1));
    let (o, d) = w.commit_batch(&[claim(1, 1)], 3).unwrap();
    assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
    assert_eq!(d, CounterDelta::default());
    assert_eq!(state(&r, 1), (MessageState::Processed, 1));

    // Message 2: a retry lands before its claim; the late claim must not take the message
    // from the next attempt, whose claim (attempt 2) then applies.
    w.commit_batch(&[retry(2, 1)], 4).unwrap();
    assert_eq!(state(&r, 2), (MessageState::Queued, 1));
    let (o, _) = w.commit_batch(&[claim(2, 1)], 5).unwrap();
    assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
    assert_eq!(state(&r, 2), (MessageState::Queued, 1));
    let (o, _) = w.commit_batch(&[claim(2, 2)], 6).unwrap();
    assert_eq!(o[0], OpOutcome::Claimed);
    assert_eq!(state(&r, 2), (MessageState::Processing, 2));
    // An outcome of an older attempt is ignored.
    let (o, _) = w.commit_batch(&[done(2, 1)], 7).unwrap();
    assert!(matches!(o[0], OpOutcome::NotApplicable { .. }), "{o:?}");
    w.commit_batch(&[done(2, 2)], 8).unwrap();
    assert_eq!(state(&r, 2), (MessageState::Processed, 2));
    let c = r.counters().unwrap();
    assert_eq!((c.processed, c.queued, c.processing), (2, 0, 0));
}

#[test]
fn leases_are_renewed_for_live_work_and_expired_ones_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (mut w, r) = sqlite::open(&db, 1).unwrap();
    w.commit_batch(&[message(), message(), message()], 1)
        .unwrap();
    // All three claimed at t=1000 with a 30 s lease (until 31_000).
    w.commit_batch(&[claim(1, 1), claim(2, 1), claim(3, 1)], 1_000)
        .unwrap();
    let renew = |live: Vec<i64>| WriteOp::RenewLeases {
        lease: lease(),
        live,
    };
    // Before expiry nothing is queued again, live or not; live ones are extended.
    let (o, _) = w.commit_batch(&[renew(vec![1])], 20_000).unwrap();
    assert_eq!(
        o[0],
        OpOutcome::LeasesRenewed {
            extended: 1,
            requeued: vec![]
        }
    );
    assert_eq!(lease_of(&db, 1).1, Some(50_000));
    // After expiry: 1 is live (renewed), 2 and 3 are nobody's and go back to queued.
    let (o, d) = w.commit_batch(&[renew(vec![1])], 40_000).unwrap();
    assert_eq!(
        o[0],
        OpOutcome::LeasesRenewed {
            extended: 1,
            requeued: vec![2, 3]
        }
    );
    assert_eq!((d.processing, d.queued, d.leases_expired), (-2, 2, 2));
    assert_eq!(state(&r, 2), (MessageState::Queued, 1), "attempts kept");
    assert_eq!(lease_of(&db, 2), (None, None));
    assert_eq!(r.expired_leases(40_000).unwrap(), 0);
    assert_eq!(
        r.expired_leases(80_000).unwrap(),
        1,
        "1's lease ends at 70 s"
    );
    // A late outcome of 2's attempt still counts (the attempt did finish).
    let (o, _) = w.commit_batch(&[done(2, 1)], 41_000).unwrap();
    assert_eq!(o[0], OpOutcome::Completed { order: None });
    assert_eq!(r.counters().unwrap().leases_expired, 2);

    // Recovery at start: this node's leases and expired ones; another node's live one stays.
    let other = WriteOp::Claim {
        id: 3,
        attempt: 2,
        lease: Lease {
            owner: "node-b:1".into(),
            duration_ms: 30_000,
        },
    };
    w.commit_batch(&[other], 50_000).unwrap();
    assert_eq!(w.recover_in_flight("node-a:1", 60_000).unwrap(), 1);
    assert_eq!(state(&r, 1).0, MessageState::Queued);
    assert_eq!(state(&r, 3).0, MessageState::Processing);
    assert_eq!(w.recover_in_flight("node-a:1", 90_000).unwrap(), 1);
    assert_eq!(state(&r, 3), (MessageState::Queued, 2));
}
