//! The deliveries' read side, once for both backends: shared statements run through
//! [`ReadStore::rows`], rows turned into the vocabulary here. Listings carry the masked
//! target (`label`), never the URL with its token.

use super::delivery::{
    DeliveryAttempt, DeliveryDetail, DeliveryQuery, DeliveryState, DeliverySummary, TargetKind,
};
use super::sql::Row;
use super::statements as sql;
use crate::base::time::rfc3339;
use crate::store::error::StoreResult;
use crate::store::seam::ReadStore;

fn summary(r: &Row) -> DeliverySummary {
    DeliverySummary {
        id: r.int(0),
        message_id: r.opt_int(1),
        target: r.text(2),
        kind: TargetKind::parse(&r.text(3)),
        state: DeliveryState::parse(&r.text(4)).unwrap_or(DeliveryState::Pending),
        attempts: r.int(5).clamp(0, u32::MAX.into()) as u32,
        created_at: rfc3339(r.int(6)),
        finished_at: r.opt_int(7).map(rfc3339),
        last_status: r.opt_int(8).and_then(|s| u16::try_from(s).ok()),
        last_error: r.opt_text(9),
    }
}

fn attempts(store: &dyn ReadStore, id: i64) -> StoreResult<Vec<DeliveryAttempt>> {
    Ok(store
        .rows(sql::ATTEMPTS_OF_DELIVERY, &[id.into()])?
        .iter()
        .map(|r| DeliveryAttempt {
            at: rfc3339(r.int(0)),
            status: r.opt_int(1).and_then(|s| u16::try_from(s).ok()),
            latency_ms: r.int(2),
            error: r.opt_text(3),
        })
        .collect())
}

/// A page of deliveries, newest first.
pub fn deliveries(store: &dyn ReadStore, q: &DeliveryQuery) -> StoreResult<Vec<DeliverySummary>> {
    let state = q.state.map_or("", DeliveryState::as_str);
    let target = q.target.as_deref().unwrap_or("");
    Ok(store
        .rows(
            sql::DELIVERIES_PAGE,
            &[
                q.before_id.unwrap_or(i64::MAX).into(),
                state.into(),
                i64::from(q.limit).into(),
                target.into(),
            ],
        )?
        .iter()
        .map(summary)
        .collect())
}

/// One delivery with its attempts (the state machine's tests read a delivery back by id).
#[cfg(test)]
pub fn delivery(store: &dyn ReadStore, id: i64) -> StoreResult<Option<DeliveryDetail>> {
    let page = deliveries(
        store,
        &DeliveryQuery {
            limit: 1,
            before_id: Some(id + 1),
            ..DeliveryQuery::default()
        },
    )?;
    let Some(summary) = page.into_iter().find(|d| d.id == id) else {
        return Ok(None);
    };
    Ok(Some(DeliveryDetail {
        attempts_made: attempts(store, id)?,
        summary,
    }))
}

/// A message's deliveries, each with its attempts.
pub fn deliveries_of_message(
    store: &dyn ReadStore,
    message_id: i64,
) -> StoreResult<Vec<DeliveryDetail>> {
    let rows = store.rows(sql::DELIVERIES_OF_MESSAGE, &[message_id.into()])?;
    rows.iter()
        .map(|r| {
            let summary = summary(r);
            Ok(DeliveryDetail {
                attempts_made: attempts(store, summary.id)?,
                summary,
            })
        })
        .collect()
}

/// A target with owed deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct OwedTarget {
    /// The full URL: for the relay only, never shown.
    pub target: String,
    pub kind: TargetKind,
    /// The URL masked.
    pub label: String,
    pub owed: i64,
}

/// Targets with owed deliveries, with how many each is owed.
pub fn owed_targets(store: &dyn ReadStore) -> StoreResult<Vec<OwedTarget>> {
    Ok(store
        .rows(sql::OWED_TARGETS, &[])?
        .iter()
        .map(|r| OwedTarget {
            target: r.text(0),
            kind: TargetKind::parse(&r.text(1)),
            label: r.text(2),
            owed: r.int(3),
        })
        .collect())
}

/// Targets that are dead until an operator retries (the full URL: for the relay only).
pub fn dead_targets(store: &dyn ReadStore) -> StoreResult<Vec<String>> {
    Ok(store
        .rows(sql::DEAD_TARGETS, &[])?
        .iter()
        .map(|r| r.text(0))
        .collect())
}

/// How many deliveries are in each owed state (`pending`, `sending`).
pub fn deliveries_by_state(store: &dyn ReadStore) -> StoreResult<Vec<(String, i64)>> {
    Ok(store
        .rows(sql::DELIVERIES_BY_STATE, &[])?
        .iter()
        .map(|r| (r.text(0), r.int(1)))
        .collect())
}

/// Owed deliveries per masked target.
pub fn owed_by_label(store: &dyn ReadStore) -> StoreResult<Vec<(String, i64)>> {
    Ok(store
        .rows(sql::OWED_BY_LABEL, &[])?
        .iter()
        .map(|r| (r.text(0), r.int(1)))
        .collect())
}
