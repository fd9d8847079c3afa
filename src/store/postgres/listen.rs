//! Events from the other nodes. Each node's writer sends a small `NOTIFY` (node, kind, id) in
//! the transaction that made the change, so it is delivered only if that commits; this
//! thread `LISTEN`s on its own connection, skips its own node's notices (those were published
//! locally after the commit) and reads the details of the others' before handing them on.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config};

use super::read::stored_order;
use super::{connect, EVENTS_CHANNEL};
use crate::store::rows::ORDER_COLUMNS;
use crate::store::{RemoteEvent, StoreError};

/// How long to wait before connecting again after the connection was lost.
const RECONNECT: Duration = Duration::from_secs(1);
/// How often the thread looks at `stop` while no notice arrives.
const TICK: Duration = Duration::from_millis(250);

/// Starts the thread that listens until `stop` disconnects; `deliver` gets each other node's
/// event.
pub fn start(
    config: Config,
    node: String,
    deliver: Box<dyn Fn(RemoteEvent) + Send>,
    stop: Receiver<()>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || loop {
            match listen(&config, &node, &*deliver, &stop) {
                Ok(()) => return,
                Err(e) => {
                    log::warn!("event listener: {e}; connecting again in {RECONNECT:?} (events from other nodes are missed meanwhile)");
                    if !matches!(
                        stop.recv_timeout(RECONNECT),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout)
                    ) {
                        return;
                    }
                }
            }
        })
        .expect("spawn pg-listen thread")
}

fn stopped(stop: &Receiver<()>) -> bool {
    matches!(
        stop.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected) | Ok(())
    )
}

/// Ok when told to stop; Err when the connection failed.
fn listen(
    config: &Config,
    node: &str,
    deliver: &dyn Fn(RemoteEvent),
    stop: &Receiver<()>,
) -> Result<(), StoreError> {
    let mut listener = connect(config)?;
    let mut details = connect(config)?;
    listener
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}"))
        .map_err(super::pg_err)?;
    while !stopped(stop) {
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
