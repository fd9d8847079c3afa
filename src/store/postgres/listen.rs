//! Events from the other nodes. Each node's writer sends a small `NOTIFY` (node, kind, id) in
//! the transaction that made the change, so it is delivered only if that commits; this
//! thread `LISTEN`s on its own connection, skips its own node's notices (those were published
//! locally after the commit) and reads the details of the others' before handing them on.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config};

use super::read::stored_order;
use super::{connect, EVENTS_CHANNEL};
use crate::base::lifecycle::Stop;
use crate::store::error::StoreError;
use crate::store::model::RemoteEvent;
use crate::store::rows::ORDER_COLUMNS;

/// How long to wait before connecting again after the connection was lost.
const RECONNECT: Duration = Duration::from_secs(1);
/// How often the thread looks at `stop` while no notice arrives.
const TICK: Duration = Duration::from_millis(250);

/// Listens until `stop` (on the listener thread; the postgres client's wait for a notice
/// cannot be woken by a channel, so it looks at `stop` every `TICK`); `deliver` gets each
/// other node's event.
pub fn run(config: Config, node: String, deliver: Box<dyn Fn(RemoteEvent) + Send>, stop: Stop) {
    loop {
        match listen(&config, &node, &*deliver, &stop) {
            Ok(()) => return,
            Err(e) => {
                log::warn!("event listener: {e}; connecting again in {RECONNECT:?} (events from other nodes are missed meanwhile)");
                if stop.sleep(RECONNECT) {
                    return;
                }
            }
        }
    }
}

/// Ok when told to stop; Err when the connection failed.
fn listen(
    config: &Config,
    node: &str,
    deliver: &dyn Fn(RemoteEvent),
    stop: &Stop,
) -> Result<(), StoreError> {
    let mut listener = connect(config)?;
    let mut details = connect(config)?;
    listener
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .map_err(super::pg_err)?;
    while !stop.is_stopping() {
        let mut notes = Vec::new();
        {
            let mut n = listener.notifications();
            let mut iter = n.timeout_iter(TICK);
            while let Some(note) = iter.next().map_err(super::pg_err)? {
                notes.push(note.payload().to_string());
                if notes.len() >= 256 {
                    break;
                }
            }
        }
        for payload in notes {
            if let Some(event) = decode(&payload, node, &mut details)? {
                deliver(event);
            }
        }
    }
    Ok(())
}

/// `node \t kind \t id`; `None` for this node's own notices and unknown kinds.
fn decode(payload: &str, me: &str, db: &mut Client) -> Result<Option<RemoteEvent>, StoreError> {
    let mut parts = payload.split('\t');
    let (Some(node), Some(kind), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    if node == me {
        return Ok(None);
    }
    Ok(match kind {
        "received" => Some(RemoteEvent::Received { id }),
        "order" => db
            .query_opt(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"),
                &[&id],
            )
            .map_err(super::pg_err)?
            .map(|r| stored_order(&r))
            .transpose()?
            .map(|o| RemoteEvent::OrderCreated(Box::new(o))),
        "dead" => db
            .query_opt("SELECT last_error FROM messages WHERE id = $1", &[&id])
            .map_err(super::pg_err)?
            .map(|r| RemoteEvent::Dead {
                id,
                error: r.get::<_, Option<String>>(0).unwrap_or_default(),
            }),
        _ => None,
    })
}
