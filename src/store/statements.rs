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
/// A purged message's deliveries go with it, their attempts first (by then each is delivered
/// or discarded: a message with one owed or dead is not a candidate).
pub const DELETE_MESSAGE_DELIVERY_ATTEMPTS: &str = "DELETE FROM delivery_attempts \
     WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = ?1)";
pub const DELETE_MESSAGE_DELIVERIES: &str = "DELETE FROM deliveries WHERE message_id = ?1";
pub const DELETE_DELIVERY_ATTEMPTS: &str = "DELETE FROM delivery_attempts WHERE delivery_id = ?1";
pub const DELETE_DELIVERY: &str = "DELETE FROM deliveries WHERE id = ?1";

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

// Deliveries (`state_machine/deliveries.rs`). A delivery with a message sends the message's
// body (`body` NULL); one on its own carries its body.

pub const INSERT_DELIVERY: &str =
    "INSERT INTO deliveries (message_id, target, kind, content_type, headers, body, state, \
     created_at, finished_at, last_error, label) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// `dead_reason` of target `?1`, when it is dead.
pub const TARGET_DEAD_REASON: &str =
    "SELECT dead_reason FROM relay_targets WHERE target = ?1 AND dead_reason IS NOT NULL";
pub const ENSURE_TARGET: &str =
    "INSERT INTO relay_targets (target) VALUES (?1) ON CONFLICT (target) DO NOTHING";
/// `lease_owner, lease_until, dead_reason` of target `?1`, locked while it is taken.
pub const TARGET_ROW: &str =
    "SELECT lease_owner, lease_until, dead_reason FROM relay_targets WHERE target = ?1 \
     FOR UPDATE";
pub const LEASE_TARGET: &str =
    "UPDATE relay_targets SET lease_owner = ?2, lease_until = ?3 WHERE target = ?1";
/// A target taken over from another node: what it was sending is owed again.
pub const RESEND_TARGET: &str = "UPDATE deliveries SET state = 'pending', lease_owner = NULL \
     WHERE target = ?1 AND state = 'sending'";
/// How many deliveries of target `?1` are in flight.
pub const SENDING_COUNT: &str =
    "SELECT count(*) FROM deliveries WHERE target = ?1 AND state = 'sending'";
/// The target's owed deliveries, oldest first: `id, next_attempt_at`.
pub const PENDING_HEAD: &str =
    "SELECT id, next_attempt_at FROM deliveries WHERE target = ?1 AND state = 'pending' \
     ORDER BY id LIMIT ?2";
pub const SEND_DELIVERY: &str =
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, lease_owner = ?2 \
     WHERE id = ?1";
/// What a sender needs: `id, message_id, target, kind, content_type, headers, body (or the
/// message's), attempts`.
pub const DELIVERY_TICKET: &str =
    "SELECT d.id, d.message_id, d.target, d.kind, d.content_type, d.headers, \
     COALESCE(d.body, b.payload), d.attempts \
     FROM deliveries d LEFT JOIN bodies b ON b.message_id = d.message_id WHERE d.id = ?1";
/// `state, attempts, target` of the delivery an outcome is for.
pub const DELIVERY_ROW: &str =
    "SELECT state, attempts, target FROM deliveries WHERE id = ?1 FOR UPDATE";
pub const RECORD_DELIVERY_ATTEMPT: &str =
    "INSERT INTO delivery_attempts (delivery_id, at, status, latency_ms, error) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
pub const DELIVERED: &str =
    "UPDATE deliveries SET state = 'delivered', finished_at = ?2, last_status = ?3, \
     last_error = NULL, lease_owner = NULL WHERE id = ?1";
pub const DELIVERY_RETRY: &str =
    "UPDATE deliveries SET state = 'pending', next_attempt_at = ?2, last_status = ?3, \
     last_error = ?4, lease_owner = NULL WHERE id = ?1";
/// A `429`: owed again from `?2`, the attempt given back (a rate limit uses none of them).
pub const DELIVERY_RATE_LIMITED: &str =
    "UPDATE deliveries SET state = 'pending', attempts = attempts - 1, next_attempt_at = ?2, \
     last_status = ?3, last_error = ?4, lease_owner = NULL WHERE id = ?1";
pub const DELIVERY_DEAD: &str =
    "UPDATE deliveries SET state = 'dead', finished_at = ?2, last_status = ?3, \
     last_error = ?4, lease_owner = NULL WHERE id = ?1";
pub const KILL_TARGET: &str =
    "UPDATE relay_targets SET dead_reason = ?2, dead_at = ?3 WHERE target = ?1";
/// The target's other owed deliveries, when it dies.
pub const OWED_BY_TARGET: &str =
    "SELECT id FROM deliveries WHERE target = ?1 AND state IN ('pending', 'sending') \
     ORDER BY id FOR UPDATE";
pub const DEAD_WITH_TARGET: &str =
    "UPDATE deliveries SET state = 'dead', finished_at = ?2, last_error = ?3, \
     lease_owner = NULL WHERE id = ?1";
pub const REVIVE_TARGET: &str =
    "UPDATE relay_targets SET dead_reason = NULL, dead_at = NULL WHERE target = ?1";
pub const REVIVE_ALL_TARGETS: &str =
    "UPDATE relay_targets SET dead_reason = NULL, dead_at = NULL WHERE dead_reason IS NOT NULL";
pub const RETRY_DEAD_DELIVERY: &str =
    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, \
     finished_at = NULL WHERE id = ?1 AND state = 'dead'";
/// Every dead delivery owed again; the `label` of each (the per-target figures move).
pub const RETRY_ALL_DEAD_DELIVERIES: &str =
    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, \
     finished_at = NULL WHERE state = 'dead' RETURNING label";
pub const DISCARD_DELIVERY: &str =
    "UPDATE deliveries SET state = 'discarded', finished_at = ?2, last_error = ?3, \
     lease_owner = NULL WHERE id = ?1 AND state IN ('dead', 'pending')";
pub const RELEASE_SENDING: &str = "UPDATE deliveries SET state = 'pending', lease_owner = NULL \
     WHERE state = 'sending' AND lease_owner = ?1";
pub const RELEASE_TARGETS: &str =
    "UPDATE relay_targets SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1";

// The read side of deliveries (`store/delivery_reads.rs`), through `ReadStore::rows`.

/// A page of deliveries, newest first, in the columns `delivery_reads::summary` reads (the
/// masked `label`, never the target with its token).
pub const DELIVERIES_PAGE: &str = "SELECT id, message_id, label, kind, state, attempts, \
     created_at, finished_at, last_status, last_error FROM deliveries \
     WHERE id < ?1 AND (?2 = '' OR state = ?2 OR (?2 = 'pending' AND state = 'sending')) \
     AND (?4 = '' OR label = ?4) ORDER BY id DESC LIMIT ?3";
pub const DELIVERIES_OF_MESSAGE: &str = "SELECT id, message_id, label, kind, state, \
     attempts, created_at, finished_at, last_status, last_error FROM deliveries \
     WHERE message_id = ?1 ORDER BY id";
pub const ATTEMPTS_OF_DELIVERY: &str =
    "SELECT at, status, latency_ms, error FROM delivery_attempts WHERE delivery_id = ?1 \
     ORDER BY id";
/// Targets with owed deliveries, `target, kind, label, count`: where the relay starts, and
/// what other nodes left (and, with them, the owed figures as the rows say).
pub const OWED_TARGETS: &str = "SELECT target, kind, label, count(*) FROM deliveries \
     WHERE state IN ('pending', 'sending') GROUP BY target, kind, label";
/// Targets dead until an operator retries.
pub const DEAD_TARGETS: &str = "SELECT target FROM relay_targets WHERE dead_reason IS NOT NULL";
/// Owed deliveries per target: `label, count` (the relay's per-target figures).
pub const OWED_BY_LABEL: &str = "SELECT label, count(*) FROM deliveries \
     WHERE state IN ('pending', 'sending') GROUP BY label";
/// `state, count` of the owed deliveries (the relay's owed figure at start; `delivered` and
/// `dead` are counters).
pub const DELIVERIES_BY_STATE: &str = "SELECT state, count(*) FROM deliveries \
     WHERE state IN ('pending', 'sending') GROUP BY state";

/// Sources, the part of the migration both backends share (SQLite's version 3, PostgreSQL's
/// version 2): every message and order names its source, and idempotency keys are unique per
/// source. Each backend then creates its rejections and source counters in its own types.
pub const SOURCE_COLUMNS: &str = "
ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT 'orders';
ALTER TABLE orders ADD COLUMN source TEXT NOT NULL DEFAULT 'orders';
DROP INDEX messages_idem_key;
CREATE UNIQUE INDEX messages_source_idem_key ON messages(source, idem_key) WHERE idem_key IS NOT NULL;
";

/// The deliveries table's indexes, created by both backends' schema migrations: by target
/// (the take), by message (a message's log), by state (listings, figures), by masked target.
pub const DELIVERY_INDEXES: &str = "
CREATE INDEX deliveries_target ON deliveries(target, state, id);
CREATE INDEX deliveries_message ON deliveries(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX deliveries_state ON deliveries(state, id);
CREATE INDEX deliveries_label ON deliveries(label, id);
";
/// Delivery retention, created by both backends' schema migrations (SQLite's version 5,
/// PostgreSQL's version 4):
///
/// * deliveries without a message, finished (delivered or discarded), by when they finished
///   (`Rules::own_delivery_candidates`): a sweep with nothing old enough reads one entry;
/// * deliveries an earlier retention left behind when it removed their message (delivered or
///   discarded ones; nothing sends or shows them any more) go, with their attempts.
pub const DELIVERY_RETENTION: &str = "
CREATE INDEX deliveries_own_finished ON deliveries(finished_at)
    WHERE message_id IS NULL AND state IN ('delivered', 'discarded');
DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT d.id FROM deliveries d
    WHERE d.message_id IS NOT NULL AND d.state IN ('delivered', 'discarded')
    AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = d.message_id));
DELETE FROM deliveries WHERE message_id IS NOT NULL AND state IN ('delivered', 'discarded')
    AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id);
";
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
