//! The sending loops: closed loop (`-n`/`-c`, each sender fires again as soon as it has an
//! answer) and open loop (a fixed schedule, latency from the intended send time).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{parse_ack, AckKind, Transport};
use crate::payload::Payloads;
use crate::report::{new_histogram, record};
use crate::schedule::{lag, latency, Schedule};
use crate::text::clip;
use crate::verify::Ack;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `total` requests, each sender sending its next one as soon as it has an answer.
    Closed { total: u64 },
    /// Requests on a fixed schedule.
    Open(Schedule),
}

impl Load {
    pub fn total(&self) -> u64 {
        match self {
            Load::Closed { total } => *total,
            Load::Open(s) => s.total(),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Load::Open(_))
    }
}

/// Everything the senders measured.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub sent: u64,
    pub ok_2xx: u64,
    pub queued: u64,
    pub duplicates: u64,
    pub unparsed_acks: u64,
    pub other_status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub error_samples: Vec<String>,
    /// New messages the server acknowledged, with what should become of them.
    pub acks: Vec<Ack>,
    /// Per-request latency in µs.
    pub latency: Histogram<u64>,
    /// Open loop: how late each send went out, in µs.
    pub lag: Histogram<u64>,
    pub late_sends: u64,
    /// First send to last answer.
    pub elapsed: Duration,
}

impl SendOutcome {
    fn new() -> SendOutcome {
        SendOutcome {
            sent: 0,
            ok_2xx: 0,
            queued: 0,
            duplicates: 0,
            unparsed_acks: 0,
            other_status: BTreeMap::new(),
            transport_errors: 0,
            error_samples: Vec::new(),
            acks: Vec::new(),
            latency: new_histogram(),
            lag: new_histogram(),
            late_sends: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, o: SendOutcome) {
        self.sent += o.sent;
        self.ok_2xx += o.ok_2xx;
        self.queued += o.queued;
        self.duplicates += o.duplicates;
        self.unparsed_acks += o.unparsed_acks;
        for (code, n) in o.other_status {
            *self.other_status.entry(code).or_default() += n;
        }
        self.transport_errors += o.transport_errors;
        for e in o.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES {
                self.error_samples.push(e);
            }
        }
        self.acks.extend(o.acks);
        self.latency.add(&o.latency).expect("same histogram bounds");
        self.lag.add(&o.lag).expect("same histogram bounds");
        self.late_sends += o.late_sends;
    }

    fn note_error(&mut self, e: String) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(e);
        }
    }
}

const MAX_ERROR_SAMPLES: usize = 5;
/// A send that goes out later than this is counted as late.
const LATE: Duration = Duration::from_millis(1);
/// Start the progress line only on runs that last at least this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

/// Live counters the progress line reads.
#[derive(Default)]
struct Live {
    done: AtomicU64,
    ok: AtomicU64,
    bad: AtomicU64,
    max_lag_us: AtomicU64,
}

/// Runs `load` with `concurrency` sender threads, each with its own transport from `make`.
/// With `progress`, a line goes to stderr every second once the run has lasted 2 s.
pub fn drive<'t>(
    load: Load,
    concurrency: usize,
    payloads: &Payloads,
    make: &(dyn Fn() -> Box<dyn Transport + 't> + Sync),
    progress: bool,
) -> SendOutcome {
    let concurrency = concurrency.max(1);
    let total = load.total();
    let next = AtomicU64::new(0);
    let live = Live::default();
    let barrier = Barrier::new(concurrency);
    let start_cell: OnceLock<Instant> = OnceLock::new();
    let finished = AtomicBool::new(false);

    let mut merged = SendOutcome::new();
    let mut last_done: Option<Instant> = None;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| {
                    let mut transport = make();
                    barrier.wait();
                    let start = *start_cell.get_or_init(Instant::now);
                    sender(
                        load,
                        start,
                        &next,
                        total,
                        payloads,
                        transport.as_mut(),
                        &live,
                    )
                })
            })
            .collect();
        let progress_thread = progress.then(|| {
            scope.spawn(|| progress_loop(&start_cell, &finished, &live, total, load.is_open()))
        });
        for h in handles {
            let (outcome, done) = h.join().expect("sender thread panicked");
            merged.merge(outcome);
            last_done = last_done.max(done);
        }
        finished.store(true, Ordering::Relaxed);
        if let Some(p) = progress_thread {
            p.join().expect("progress thread panicked");
        }
    });
    let start = start_cell.get().copied().unwrap_or_else(Instant::now);
    merged.elapsed = last_done.map(|d| d - start).unwrap_or_default();
    merged
}

/// One sender thread: takes the next request index until none are left.
fn sender(
    load: Load,
    start: Instant,
    next: &AtomicU64,
    total: u64,
    payloads: &Payloads,
    transport: &mut dyn Transport,
    live: &Live,
) -> (SendOutcome, Option<Instant>) {
    let mut out = SendOutcome::new();
    let mut last_done = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let (body, expect) = payloads.get(i);
        let intended = match load {
            Load::Closed { .. } => Instant::now(),
            Load::Open(schedule) => {
                let intended = schedule.intended(start, i);
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                let late = lag(intended, Instant::now());
                record(&mut out.lag, late);
                if late > LATE {
                    out.late_sends += 1;
                }
                live.max_lag_us
                    .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                intended
            }
        };
        let result = transport.post(&body);
        let done = Instant::now();
        // Open loop: charged from the intended time, so a stalled sender cannot hide latency.
        record(&mut out.latency, latency(intended, done));
        last_done = Some(done);
        out.sent += 1;
        match result {
            Ok(reply) if (200..300).contains(&reply.status) => {
                out.ok_2xx += 1;
                live.ok.fetch_add(1, Ordering::Relaxed);
                match parse_ack(&reply.body) {
                    Some(AckKind::Queued(id)) => {
                        out.queued += 1;
                        out.acks.push(Ack { id, expect, seq: i });
                    }
                    Some(AckKind::Duplicate(_)) => out.duplicates += 1,
                    None => {
                        out.unparsed_acks += 1;
                        out.note_error(format!(
                            "{} answer is not {{\"status\":..,\"id\":..}}: {}",
                            reply.status,
                            clip(&reply.body)
                        ));
                    }
                }
            }
            Ok(reply) => {
                *out.other_status.entry(reply.status).or_default() += 1;
                live.bad.fetch_add(1, Ordering::Relaxed);
                out.note_error(format!("{}: {}", reply.status, clip(&reply.body)));
            }
            Err(e) => {
                out.transport_errors += 1;
                live.bad.fetch_add(1, Ordering::Relaxed);
                out.note_error(format!("transport: {e}"));
            }
        }
        live.done.fetch_add(1, Ordering::Relaxed);
    }
    (out, last_done)
}

fn progress_loop(
    start_cell: &OnceLock<Instant>,
    finished: &AtomicBool,
    live: &Live,
    total: u64,
    open: bool,
) {
    let tty = std::io::stderr().is_terminal();
    let mut printed = false;
    let mut next_tick = Duration::from_secs(1);
    let mut prev_done = 0;
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        let Some(start) = start_cell.get() else {
            continue;
        };
        let elapsed = start.elapsed();
        if elapsed < next_tick {
            continue;
        }
        next_tick += Duration::from_secs(1);
        let done = live.done.load(Ordering::Relaxed);
        let rate = done - prev_done;
        prev_done = done;
        if elapsed < PROGRESS_AFTER {
            continue;
        }
        let mut line = format!(
            "[{:>4}s] {done}/{total} answered, {} 2xx, {} errors, {rate} req/s",
            elapsed.as_secs(),
            live.ok.load(Ordering::Relaxed),
            live.bad.load(Ordering::Relaxed),
        );
        if open {
            line.push_str(&format!(
                ", max behind schedule {:.1} ms",
                live.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0
            ));
        }
        progress_line(&line, tty);
        printed = true;
    }
    if printed && tty {
        eprintln!();
    }
}

/// Writes one progress line to stderr: overwriting in place on a terminal, one per line
/// otherwise.
pub fn progress_line(line: &str, tty: bool) {
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Reply;
    use std::sync::atomic::AtomicI64;
    use std::sync::Mutex;

    struct Fake<'a> {
        ids: &'a AtomicI64,
        /// (request number, delay, status)
        script: &'a Mutex<Vec<(Duration, u16)>>,
    }

    impl Transport for Fake<'_> {
        fn post(&mut self, _body: &[u8]) -> Result<Reply, String> {
            let step = self.script.lock().unwrap().pop();
            let (delay, status) = step.unwrap_or((Duration::ZERO, 200));
            std::thread::sleep(delay);
            if status == 0 {
                return Err("connection reset".into());
            }
            let id = self.ids.fetch_add(1, Ordering::Relaxed);
            Ok(Reply {
                status,
                body: format!(r#"{{"status":"queued","id":{id}}}"#),
            })
        }
    }

    #[test]
    fn closed_loop_counts_every_request_once() {
        let ids = AtomicI64::new(1);
        // pop() takes from the end: one 503 and one transport error among 100 requests
        let script = Mutex::new(vec![(Duration::ZERO, 503), (Duration::ZERO, 0)]);
        let make = || -> Box<dyn Transport + '_> {
            Box::new(Fake {
                ids: &ids,
                script: &script,
            })
        };
        let out = drive(
            Load::Closed { total: 100 },
            4,
            &Payloads::generated("T"),
            &make,
            false,
        );
        assert_eq!(out.sent, 100);
        assert_eq!(out.ok_2xx, 98);
        assert_eq!(out.queued, 98);
        assert_eq!(out.other_status.get(&503), Some(&1));
        assert_eq!(out.transport_errors, 1);
        assert_eq!(out.latency.len(), 100);
        assert_eq!(out.acks.len(), 98);
        let mut acked: Vec<i64> = out.acks.iter().map(|a| a.id).collect();
        acked.sort_unstable();
        acked.dedup();
        assert_eq!(acked.len(), 98);
        assert!(out.lag.is_empty(), "closed loop has no schedule");
    }

    #[test]
    fn open_loop_charges_a_stall_to_the_requests_behind_it() {
        // 20 requests over 200 ms (one every 10 ms) through ONE sender; the first answer
        // takes 300 ms. Everything scheduled during the stall went out late, and its latency
        // is measured from its intended time, so most requests show >= 100 ms.
        let ids = AtomicI64::new(1);
        let script = Mutex::new(vec![(Duration::from_millis(300), 200)]);
        let make = || -> Box<dyn Transport + '_> {
            Box::new(Fake {
                ids: &ids,
                script: &script,
            })
        };
        let schedule = Schedule::new(20, Duration::from_millis(200));
        let out = drive(
            Load::Open(schedule),
            1,
            &Payloads::generated("T"),
            &make,
            false,
        );
        assert_eq!(out.sent, 20);
        assert_eq!(out.ok_2xx, 20);
        // request 19 was meant for t=190ms and could not go before t=300ms
        assert!(out.latency.max() >= 300_000, "max {}", out.latency.max());
        assert!(
            out.latency.value_at_quantile(0.5) >= 100_000,
            "median {} µs: the stall must show in the median",
            out.latency.value_at_quantile(0.5)
        );
        assert_eq!(out.lag.len(), 20);
        assert!(out.late_sends >= 19, "late {}", out.late_sends);
        assert!(out.lag.max() >= 290_000, "lag max {}", out.lag.max());
        assert!(out.elapsed >= Duration::from_millis(300));
    }

    #[test]
    fn open_loop_keeps_the_schedule_with_enough_senders() {
        let ids = AtomicI64::new(1);
        let script = Mutex::new(vec![]);
        let make = || -> Box<dyn Transport + '_> {
            Box::new(Fake {
                ids: &ids,
                script: &script,
            })
        };
        let schedule = Schedule::new(50, Duration::from_millis(250));
        let t0 = Instant::now();
        let out = drive(
            Load::Open(schedule),
            4,
            &Payloads::generated("T"),
            &make,
            false,
        );
        assert_eq!(out.sent, 50);
        // the schedule, not the server, paces an open loop
        assert!(t0.elapsed() >= Duration::from_millis(245));
        assert!(
            out.elapsed >= Duration::from_millis(240),
            "{:?}",
            out.elapsed
        );
    }
}
