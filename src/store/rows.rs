//! The rows the read side turns into the storage vocabulary, once for both backends: each
//! backend hands over its result rows as [`Row`]s (cells), and these say what the columns mean.

use super::sql::{Cell, Row};
use crate::base::time::rfc3339;
use crate::store::model::{MessageState, MessageSummary, RawMessage, StoredOrder};
use crate::store::order::Order;

/// The columns [`summary`] reads, in its order.
pub const SUMMARY_COLUMNS: &str =
    "id, received_at, path, remote_addr, size, state, attempts, last_error, finished_at, note, \
    source";

pub fn summary(r: &Row) -> MessageSummary {
    MessageSummary {
        id: r.int(0),
        received_at: rfc3339(r.int(1)),
        source: r.text(10),
        path: r.text(2),
        remote_addr: r.opt_text(3),
        size: r.int(4).max(0) as u64,
        status: MessageState::parse(&r.text(5)).unwrap_or(MessageState::Queued),
        attempts: r.int(6).clamp(0, u32::MAX.into()) as u32,
        last_error: r.opt_text(7),
        processed_at: r.opt_int(8).map(rfc3339),
        note: r.opt_text(9),
    }
}

/// `id, path, state, payload`, for `reprocess`.
pub fn raw_message(r: &Row) -> RawMessage {
    RawMessage {
        id: r.int(0),
        path: r.text(1),
        state: MessageState::parse(&r.text(2)).unwrap_or(MessageState::Queued),
        payload: match r.0.get(3) {
            Some(Cell::Blob(b)) => b.clone(),
            _ => Vec::new(),
        },
    }
}

/// The columns [`stored_order`] reads, in its order.
pub const ORDER_COLUMNS: &str =
    "id, message_id, source_path, created_at, updated_at, order_number, product, \
    amount_cents, currency, email, size, site, quantity, profile, title, fields, source";

pub fn stored_order(r: &Row) -> StoredOrder {
    StoredOrder {
        id: r.int(0),
        message_id: r.int(1),
        source: r.text(16),
        source_path: r.text(2),
        created_at: rfc3339(r.int(3)),
        updated_at: r.opt_int(4).map(rfc3339),
        order: Order {
            order_number: r.text(5),
            product: r.opt_text(6),
            amount_cents: r.opt_int(7),
            currency: r.opt_text(8),
            email: r.opt_text(9),
            size: r.opt_text(10),
            site: r.opt_text(11),
            quantity: r.int(12),
            profile: r.opt_text(13),
            title: r.opt_text(14),
            fields: serde_json::from_str(&r.text(15)).unwrap_or_default(),
        },
    }
}
