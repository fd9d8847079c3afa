//! The slow path: when the channel was full, after recovery, after an operator retry, or when
//! a retry's backoff has passed, the feeder reads due `queued` messages from the database
//! (oldest first) and hands them to the workers as room appears.
//!
//! It does not poll on one node: everything that leaves a message waiting on disk for it says
//! so through the [`Dispatcher`] (a full channel, re-queued leases and dead letters wake it at
//! once, a released message a second later), and after each pass it asks the database when
//! the next waiting retry becomes due (a retry whose worker was stopped during its backoff,
//! found at the next start) and sleeps until then. With nothing waiting it sleeps until woken:
//! no wake-ups while idle. A retry that runs its course in its worker's own
//! backoff sleep never involves the feeder.
//!
//! On a database shared with other nodes it also looks every [`SHARED_POLL`]: other nodes'
//! retries and operator actions, and the messages of a node that died, become due without
//! this node hearing of it (docs/cluster.md).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{after, never, select, Receiver};

use super::dispatch::RECENT;
use super::Dispatcher;
use crate::base::lifecycle::{Background, Stop};
use crate::base::time::now_ms;
use crate::store::ReadStore;

/// How often the feeder looks on a database shared with other nodes, even when nobody woke it.
pub const SHARED_POLL: Duration = Duration::from_secs(1);
/// After a failed read the feeder tries again this much later.
const READ_RETRY: Duration = Duration::from_secs(1);
const PAGE: u32 = 256;

/// The feeder thread.
pub struct Feeder;

/// How a pass over the due backlog ended.
enum Pass {
    /// Read to the end; the first page was read at `read_at` (unix ms).
    Done { read_at: i64 },
    /// The backlog could not be read.
    Failed,
    /// Told to stop.
    Stopped,
}

impl Feeder {
    /// `poll`: look at least this often even when nobody asks ([`SHARED_POLL`] when other
    /// nodes share the database, `None` on a database of this node's own).
    pub fn start(
        reader: Arc<dyn ReadStore>,
        dispatcher: Dispatcher,
        wake: Receiver<()>,
        poll: Option<Duration>,
    ) -> std::io::Result<Background> {
        let mut feeder = Background::new("feeder");
        feeder.spawn("feeder", move |stop| {
            // When the next pass is due (unix ms); `None`: only when asked. The first is
            // at once: what recovery queued, retries that became due while stopped.
            let mut next_pass = Some(i64::MIN);
            loop {
                if let Some(asked) = dispatcher.take_feeder_request() {
                    next_pass = Some(next_pass.map_or(asked, |n| n.min(asked)));
                }
                let now = now_ms();
                let timeout = match next_pass {
                    Some(at) if at <= now => {
                        next_pass = match scan(&*reader, &dispatcher, &stop) {
                            Pass::Stopped => return,
                            Pass::Failed => Some(now_ms() + millis(READ_RETRY)),
                            // The poll below finds them; no extra statement per second.
                            Pass::Done { .. } if poll.is_some() => None,
                            Pass::Done { read_at } => next_due(&*reader, read_at),
                        };
                        if let Some(poll) = poll {
                            let polled = now_ms() + millis(poll);
                            next_pass = Some(next_pass.map_or(polled, |n| n.min(polled)));
                        }
                        continue;
                    }
                    Some(at) => after(Duration::from_millis((at - now) as u64)),
                    None => never(),
                };
                select! {
                    recv(wake) -> _ => {}
                    recv(stop.receiver()) -> _ => return,
                    recv(timeout) -> _ => {}
                }
            }
        })?;
        Ok(feeder)
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// When the next retry waiting on disk becomes due. Rows that became due after the first page
/// was read (`read_at`) may have been passed by the cursor, so they count too and bring the
/// next pass forward to now.
fn next_due(reader: &dyn ReadStore, read_at: i64) -> Option<i64> {
    match reader.next_due_at(read_at) {
        Ok(at) => at,
        Err(e) => {
            log::error!(
                "feeder: cannot read when the next retry is due: {e}; looking again in {READ_RETRY:?}"
            );
            Some(now_ms() + millis(READ_RETRY))
        }
    }
}

/// One pass over the due backlog.
fn scan(reader: &dyn ReadStore, dispatcher: &Dispatcher, stop: &Stop) -> Pass {
    let mut cursor = 0;
    let mut first_read = None;
    'pages: loop {
        let finished_before = dispatcher.finished();
        let now = now_ms();
        let read_at = *first_read.get_or_insert(now);
        let jobs = match reader.due_jobs(cursor, now, PAGE) {
            Ok(jobs) => jobs,
            Err(e) => {
                log::error!("feeder: cannot read the backlog: {e}; trying again in {READ_RETRY:?}");
                return Pass::Failed;
            }
        };
        if jobs.is_empty() {
            return Pass::Done { read_at };
        }
        for job in jobs {
            // Rows read so long ago that the dispatcher may have forgotten some of them
            // finishing since: read again from here.
            if dispatcher.finished() - finished_before > (RECENT / 2) as u64 {
                continue 'pages;
            }
            cursor = job.id;
            if !dispatcher.send_or_stop(job, stop.receiver()) {
                return Pass::Stopped;
            }
        }
    }
}
