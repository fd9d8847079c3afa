//! The statements both backends run, in SQL both understand, with `?N` placeholders (see
//! [`Value`](super::sql::Value)). The few that must differ are each backend's
//! [`Rules`](super::sql::Rules).

/// Idempotency keys are unique per source.
pub const APPEND_MESSAGE: &str =
    "INSERT INTO messages (received_at, path, remote_addr, size, idem_key, state, source) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6) \
     ON CONFLICT (source, idem_key) WHERE idem_key IS NOT NULL DO NOTHING";
pub const MESSAGE_BY_IDEM_KEY: &str = "SELECT id FROM messages WHERE source = ?1 AND idem_key = ?2";
pub const APPEND_BODY: &str =
    "INSERT INTO bodies (message_id, headers, payload) VALUES (?1, ?2, ?3)";

pub const MESSAGE_STATE: &str = "SELECT state FROM messages WHERE id = ?1";
pub const MESSAGE_PATH_AND_STATE: &str = "SELECT path, state, source FROM messages WHERE id = ?1";

/// The statements that land an attempt's outcome: by id alone (once the guard was checked on
/// the row), or guarded in the statement itself for the two places an outcome usually finds
/// its message, so the usual case needs no read first: `processing` that attempt (and, where
/// the holder counts, leased to the last parameter), or `queued` just before it (its claim
/// folded into the same batch). Each returns the message's source when it changed the row.
pub struct OutcomeStatements {
    pub by_id: &'static str,
    pub if_processing: &'static str,
    pub if_queued_before: &'static str,
}

/// `$set` is the `UPDATE ... SET ...` part; `$attempt` the attempt's parameter, `$holder` the
/// lease holder's (NULL where any holder will do).
macro_rules! outcome {
    ($set:literal, $attempt:literal, $holder:literal) => {
        OutcomeStatements {
            by_id: concat!($set, " WHERE id = ?1 RETURNING source"),
            if_processing: concat!(
                $set,
                " WHERE id = ?1 AND state = 'processing' AND attempts = ",
                $attempt,
                " AND (CAST(",
                $holder,
                " AS TEXT) IS NULL OR lease_owner = ",
                $holder,
                ") RETURNING source"
            ),
            if_queued_before: concat!(
                $set,
                " WHERE id = ?1 AND state = 'queued' AND attempts = ",
                $attempt,
                " - 1 RETURNING source"
            ),
        }
    };
}

/// `?1` id, `?2` finished at, `?3` attempt, `?4` holder.
pub const COMPLETE: OutcomeStatements = outcome!(
    "UPDATE messages SET state = 'processed', finished_at = ?2, last_error = NULL, \
     attempts = ?3, lease_owner = NULL, lease_until = NULL",
    "?3",
    "?4"
);
/// `?1` id, `?2` error, `?3` next attempt at, `?4` attempt, `?5` holder.
pub const RETRY: OutcomeStatements = outcome!(
    "UPDATE messages SET state = 'queued', last_error = ?2, next_attempt_at = ?3, \
     attempts = ?4, lease_owner = NULL, lease_until = NULL",
    "?4",
    "?5"
);
/// `?1` id, `?2` error, `?3` finished at, `?4` attempt, `?5` holder.
pub const DEAD: OutcomeStatements = outcome!(
    "UPDATE messages SET state = 'dead', last_error = ?2, finished_at = ?3, \
     attempts = ?4, lease_owner = NULL, lease_until = NULL",
    "?4",
    "?5"
);
pub const SET_NOTE: &str = "UPDATE messages SET note = ?2 WHERE id = ?1";

/// `state, attempts, path, lease_owner` of the message an attempt's outcome is for.
pub const ATTEMPT_ROW: &str =
    "SELECT state, attempts, path, lease_owner FROM messages WHERE id = ?1 FOR UPDATE";
/// `processing` rows as `id, lease_owner, lease_until`; one another writer is changing right
/// now is skipped (its change decides; the next tick sees it).
pub const PROCESSING_ROWS: &str = "SELECT id, lease_owner, lease_until FROM messages \
     WHERE state = 'processing' ORDER BY id FOR UPDATE SKIP LOCKED";
/// Recovery at start: `processing` messages leased to `?1`, to nobody, or until before `?2`.
pub const RECOVERABLE: &str = "SELECT id FROM messages WHERE state = 'processing' \
     AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_until IS NULL OR lease_until < ?2) \
     ORDER BY id FOR UPDATE SKIP LOCKED";

pub const EXTEND_LEASE: &str = "UPDATE messages SET lease_until = ?2 WHERE id = ?1";
pub const REQUEUE_EXPIRED: &str =
    "UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE id = ?1";

pub const REQUEUE_DEAD: &str =
    "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
     finished_at = NULL WHERE id = ?1 AND state = 'dead'";
pub const REQUEUE_ALL_DEAD: &str =
    "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = 0, \
     finished_at = NULL WHERE state = 'dead'";
pub const DISCARD: &str =
    "UPDATE messages SET state = 'discarded', note = ?2 WHERE id = ?1 AND state = 'dead'";
pub const RECORD_ACTION: &str =
    "INSERT INTO operator_actions (message_id, at, action, actor, affected) \
     VALUES (?1, ?2, ?3, ?4, ?5)";

pub const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE id = ?1";
pub const DELETE_BODY: &str = "DELETE FROM bodies WHERE message_id = ?1";

pub const REDERIVED_PROCESSED: &str =
    "UPDATE messages SET state = 'processed', finished_at = ?2, last_error = NULL, \
     note = 'order derived by reprocess' WHERE id = ?1";

/// The order's columns from `product` to `fields` are `?4`..`?13` here and `?2`..`?11` in
/// [`UPDATE_ORDER_IF_CHANGED`]; `order_params` in `state_machine.rs` lists them once.
pub const INSERT_ORDER: &str =
    "INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, \
     currency, email, size, site, quantity, profile, title, fields, created_at, source) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (source_path, order_number) DO NOTHING";
pub const ORDER_BY_KEY: &str =
    "SELECT id, message_id FROM orders WHERE source_path = ?1 AND order_number = ?2";
pub const UPDATE_ORDER_IF_CHANGED: &str =
    "UPDATE orders SET product = ?2, amount_cents = ?3, currency = ?4, email = ?5, size = ?6, \
     site = ?7, quantity = ?8, profile = ?9, title = ?10, fields = ?11, updated_at = ?12 \
     WHERE id = ?1 AND NOT (product IS NOT DISTINCT FROM ?2 \
     AND amount_cents IS NOT DISTINCT FROM ?3 AND currency IS NOT DISTINCT FROM ?4 \
     AND email IS NOT DISTINCT FROM ?5 AND size IS NOT DISTINCT FROM ?6 \
     AND site IS NOT DISTINCT FROM ?7 AND quantity = ?8 AND profile IS NOT DISTINCT FROM ?9 \
     AND title IS NOT DISTINCT FROM ?10 AND fields = ?11)";

/// The rejections log: a refused webhook, then whatever falls out of the last `?1` rows, in
/// the same transaction.
pub const INSERT_REJECTION: &str =
    "INSERT INTO rejections (at, source, remote_addr, reason, size) VALUES (?1, ?2, ?3, ?4, ?5)";
pub const TRIM_REJECTIONS: &str = "DELETE FROM rejections WHERE id <= \
     (SELECT id FROM rejections ORDER BY id DESC LIMIT 1 OFFSET ?1)";

/// A per-source total moves by `?4` (this node's row; `node` is '' on SQLite).
pub const ADD_SOURCE_COUNTER: &str =
    "INSERT INTO source_counters (node, source, name, value) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (node, source, name) DO UPDATE SET value = source_counters.value + excluded.value";
