//! The slow path: when the channel was full, after recovery, after an operator retry, or when
//! a retry's backoff has passed, the feeder reads due `queued` messages from the database
//! (oldest first) and hands them to the workers as room appears.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver};

use super::dispatch::RECENT;
use super::Dispatcher;
use crate::store::ReadStore;
use crate::time::now_ms;

/// How often the feeder looks even when nobody woke it: retries whose backoff ended after a
/// restart are found this way.
const POLL: Duration = Duration::from_secs(1);
const PAGE: u32 = 256;

pub struct Feeder {
    thread: JoinHandle<()>,
}

impl Feeder {
    pub fn start(
        reader: Arc<dyn ReadStore>,
        dispatcher: Dispatcher,
        wake: Receiver<()>,
        stop: Receiver<()>,
    ) -> Feeder {
        let thread = std::thread::Builder::new()
            .name("feeder".into())
            .spawn(move || loop {
                if !scan(&*reader, &dispatcher, &stop) {
                    return;
                }
                select! {
                    recv(wake) -> _ => {}
                    recv(stop) -> _ => return,
                    default(POLL) => {}
                }
            })
            .expect("spawn feeder thread");
        Feeder { thread }
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// One pass over the due backlog; false when told to stop.
fn scan(reader: &dyn ReadStore, dispatcher: &Dispatcher, stop: &Receiver<()>) -> bool {
    let mut cursor = 0;
    'pages: loop {
        let finished_before = dispatcher.finished();
        let jobs = match reader.due_jobs(cursor, now_ms(), PAGE) {
            Ok(jobs) => jobs,
            Err(e) => {
                log::error!("feeder: cannot read the backlog: {e}; trying again in {POLL:?}");
                return true;
            }
        };
        if jobs.is_empty() {
            return true;
        }
        for job in jobs {
            // Rows read so long ago that the dispatcher may have forgotten some of them
            // finishing since: read again from here.
            if dispatcher.finished() - finished_before > (RECENT / 2) as u64 {
                continue 'pages;
            }
            cursor = job.id;
            if !dispatcher.send_or_stop(job, stop) {
                return false;
            }
        }
    }
}
