//! After-run verification: wait for the server's queue to drain, then check that every
//! acknowledged webhook reached a final state.
//!
//! The HTTP calls sit behind [`AdminApi`] (in [`crate::admin`]) so the logic can be tested with canned answers.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admin::{AdminApi, LogEntry, Stats};
use crate::payload::Expect;

/// One acknowledged webhook: the id the server gave it and what should become of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub id: i64,
    pub expect: Expect,
    /// The request's sequence number in the run (see [`crate::Payloads::label`]).
    pub seq: u64,
}

/// Knobs for [`drain_and_verify`].
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Give up waiting for the queue to drain after this long.
    pub drain_timeout: Duration,
    /// Time between stats polls.
    pub poll_interval: Duration,
    /// Once the queue is empty, how long to wait for the finished counters to catch up before
    /// calling the shortfall lost.
    pub settle: Duration,
    /// Check at most this many acknowledged ids through the logs endpoint.
    pub sample: usize,
    /// Seed for picking the sample.
    pub seed: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            drain_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_millis(100),
            settle: Duration::from_secs(2),
            sample: 200,
            seed: 0x5eed,
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verification {
    /// The queue emptied (and the counters caught up) before the drain timeout.
    pub drained: bool,
    /// From the end of sending until the queue was empty (or the timeout).
    pub drain_secs: f64,
    /// New messages acknowledged (`"queued"` answers; duplicates are not new).
    pub acked: u64,
    /// How many of them were expected to end dead.
    pub expected_dead: u64,
    /// Growth of `total_processed` over the run.
    pub processed_delta: u64,
    /// Growth of `total_failed` over the run.
    pub failed_delta: u64,
    /// Acknowledged messages the counters cannot account for.
    pub lost: u64,
    /// Ids checked through the logs endpoint.
    pub sampled: u64,
    /// Sampled ids whose final state was wrong, missing or not final.
    pub sample_bad: u64,
    /// The first few sample problems, one line each.
    pub sample_problems: Vec<String>,
    /// The last stats seen.
    pub stats_after: Option<Stats>,
    /// Why verification failed, one line each; empty when it passed.
    pub failures: Vec<String>,
    pub ok: bool,
}

const MAX_LISTED_PROBLEMS: usize = 10;

/// Polls stats until nothing is pending and the finished counters have grown by the number of
/// acks (or the queue has been empty for `settle`, or `drain_timeout` passed), then samples
/// acknowledged ids through the logs endpoint. `on_poll` sees every stats answer (for progress);
/// `label` names the body of a request by its sequence number in problem lines.
pub fn drain_and_verify(
    api: &mut dyn AdminApi,
    before: &Stats,
    acks: &[Ack],
    cfg: &VerifyConfig,
    on_poll: &mut dyn FnMut(&Stats, Duration),
    label: &dyn Fn(u64) -> String,
) -> Verification {
    let mut v = Verification {
        acked: acks.len() as u64,
        expected_dead: acks.iter().filter(|a| a.expect == Expect::Dead).count() as u64,
        ..Verification::default()
    };
    let start = Instant::now();
    let mut empty_since: Option<Instant> = None;
    let mut last_error: Option<String>;
    loop {
        let now = Instant::now();
        match api.stats() {
            Ok(stats) => {
                on_poll(&stats, now - start);
                let caught_up = stats.finished().saturating_sub(before.finished()) >= v.acked;
                let empty = stats.pending() == 0;
                v.stats_after = Some(stats);
                if empty && caught_up {
                    v.drained = true;
                } else if empty {
                    let since = *empty_since.get_or_insert(now);
                    if now - since >= cfg.settle {
                        // the queue is empty and stays empty: whatever is missing is lost
                        v.drained = true;
                    }
                } else {
                    empty_since = None;
                }
                last_error = None;
            }
            Err(e) => last_error = Some(e),
        }
        if v.drained {
            break;
        }
        if start.elapsed() >= cfg.drain_timeout {
            break;
        }
        std::thread::sleep(
            cfg.poll_interval
                .min(cfg.drain_timeout.saturating_sub(start.elapsed())),
        );
    }
    v.drain_secs = start.elapsed().as_secs_f64();

    match &v.stats_after {
        None => v.failures.push(format!(
            "could not read stats after sending: {}",
            last_error.as_deref().unwrap_or("no answer")
        )),
        Some(after) => {
            v.processed_delta = after.total_processed.saturating_sub(before.total_processed);
            v.failed_delta = after.total_failed.saturating_sub(before.total_failed);
            let finished = after.finished().saturating_sub(before.finished());
            v.lost = v.acked.saturating_sub(finished);
            if !v.drained {
                v.failures.push(format!(
                    "timeout: queue not drained after {:.1} s (queue_size {} + in_flight {} still pending{})",
                    cfg.drain_timeout.as_secs_f64(),
                    after.queue_size,
                    after.in_flight,
                    last_error
                        .as_ref()
                        .map(|e| format!("; last stats error: {e}"))
                        .unwrap_or_default()
                ));
            } else if v.lost > 0 {
                v.failures.push(format!(
                    "loss: {} acknowledged webhooks never finished (total_processed+total_failed grew by {finished}, {} were acknowledged)",
                    v.lost, v.acked
                ));
            }
        }
    }

    check_sample(api, acks, cfg, label, &mut v);
    v.ok = v.failures.is_empty();
    v
}

fn check_sample(
    api: &mut dyn AdminApi,
    acks: &[Ack],
    cfg: &VerifyConfig,
    label: &dyn Fn(u64) -> String,
    v: &mut Verification,
) {
    let picked = sample_indices(acks.len(), cfg.sample, cfg.seed);
    v.sampled = picked.len() as u64;
    for i in picked {
        let ack = acks[i];
        let problem = match api.log(ack.id) {
            Err(e) => Some(format!("id {}: log lookup failed: {e}", ack.id)),
            Ok(None) => Some(format!(
                "id {}: not found (404) although it was acknowledged",
                ack.id
            )),
            Ok(Some(entry)) => judge(ack, &entry),
        };
        if let Some(p) = problem {
            let p = format!("{p} [{}]", label(ack.seq));
            v.sample_bad += 1;
            if v.sample_problems.len() < MAX_LISTED_PROBLEMS {
                v.sample_problems.push(p);
            }
        }
    }
    if v.sample_bad > 0 {
        v.failures.push(format!(
            "{} of {} sampled acknowledged ids are not in the expected final state (first: {})",
            v.sample_bad,
            v.sampled,
            v.sample_problems.first().map(String::as_str).unwrap_or("?")
        ));
    }
}

/// `None` when the entry is in the state the ack expects.
pub fn judge(ack: Ack, entry: &LogEntry) -> Option<String> {
    let why = || {
        entry
            .last_error
            .as_deref()
            .map(|e| format!(" (last_error: {e})"))
            .unwrap_or_default()
    };
    match (entry.status.as_str(), ack.expect) {
        ("processed", Expect::Processed) => None,
        ("dead" | "discarded", Expect::Dead) => None,
        ("dead" | "discarded", Expect::Processed) => Some(format!(
            "id {}: {} but its body should have been processed{}",
            ack.id,
            entry.status,
            why()
        )),
        ("processed", Expect::Dead) => Some(format!(
            "id {}: processed but its body was expected to end in dead letters",
            ack.id
        )),
        (other, _) => Some(format!(
            "id {}: still '{other}' after the queue drained (attempts {}){}",
            ack.id,
            entry.attempts,
            why()
        )),
    }
}

/// Up to `k` distinct indices below `n`, picked pseudo-randomly from `seed` (partial
/// Fisher-Yates with xorshift), in ascending order.
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + (next() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = idx[..k].to_vec();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};

    /// Canned stats answers (the last one repeats) and a map of log entries.
    struct Fake {
        stats: VecDeque<Result<Stats, String>>,
        logs: HashMap<i64, LogEntry>,
        log_calls: u64,
    }

    impl Fake {
        fn new(stats: Vec<Result<Stats, String>>) -> Fake {
            Fake {
                stats: stats.into(),
                logs: HashMap::new(),
                log_calls: 0,
            }
        }
        fn with_logs(mut self, ids: impl IntoIterator<Item = i64>, status: &str) -> Fake {
            for id in ids {
                self.logs.insert(
                    id,
                    LogEntry {
                        id,
                        status: status.to_string(),
                        attempts: 1,
                        last_error: (status == "dead").then(|| "parse error".to_string()),
                    },
                );
            }
            self
        }
    }

    impl AdminApi for Fake {
        fn stats(&mut self) -> Result<Stats, String> {
            if self.stats.len() > 1 {
                self.stats.pop_front().unwrap()
            } else {
                self.stats.front().cloned().unwrap()
            }
        }
        fn log(&mut self, id: i64) -> Result<Option<LogEntry>, String> {
            self.log_calls += 1;
            Ok(self.logs.get(&id).cloned())
        }
    }

    fn stats(queue: u64, in_flight: u64, processed: u64, failed: u64) -> Stats {
        Stats {
            queue_size: queue,
            in_flight,
            total_processed: processed,
            total_failed: failed,
            ..Stats::default()
        }
    }

    fn acks(ids: std::ops::Range<i64>, expect: Expect) -> Vec<Ack> {
        ids.map(|id| Ack {
            id,
            expect,
            seq: id as u64,
        })
        .collect()
    }

    fn fast() -> VerifyConfig {
        VerifyConfig {
            drain_timeout: Duration::from_millis(300),
            poll_interval: Duration::from_millis(1),
            settle: Duration::from_millis(20),
            sample: 200,
            seed: 1,
        }
    }

    fn run(api: &mut Fake, before: &Stats, acks: &[Ack]) -> Verification {
        drain_and_verify(api, before, acks, &fast(), &mut |_, _| {}, &|seq| {
            format!("body {seq}")
        })
    }

    #[test]
    fn passes_when_queue_drains_and_everything_is_processed() {
        let before = stats(0, 0, 1000, 5);
        let mut api = Fake::new(vec![
            Ok(stats(50, 4, 1046, 5)),
            Ok(stats(10, 4, 1086, 5)),
            Ok(stats(0, 0, 1100, 5)),
        ])
        .with_logs(1..101, "processed");
        let v = run(&mut api, &before, &acks(1..101, Expect::Processed));
        assert!(v.ok, "{:?}", v.failures);
        assert!(v.drained);
        assert_eq!(
            (v.acked, v.lost, v.processed_delta, v.failed_delta),
            (100, 0, 100, 0)
        );
        assert_eq!(v.sampled, 100);
        assert_eq!(api.log_calls, 100);
    }

    #[test]
    fn counts_lost_messages_when_counters_fall_short() {
        let before = stats(0, 0, 0, 0);
        // the queue is empty at once but only 97 of 100 ever finished
        let mut api = Fake::new(vec![Ok(stats(0, 0, 97, 0))]).with_logs(1..98, "processed");
        let v = run(&mut api, &before, &acks(1..101, Expect::Processed));
        assert!(!v.ok);
        assert!(v.drained, "empty queue that stays empty counts as drained");
        assert_eq!(v.lost, 3);
        assert!(
            v.failures[0].starts_with("loss: 3 acknowledged"),
            "{:?}",
            v.failures
        );
        // ids 98..100 are missing from the log
        assert_eq!(v.sample_bad, 3);
        assert!(v
            .sample_problems
            .iter()
            .any(|p| p.contains("id 99: not found") && p.ends_with("[body 99]")));
    }

    #[test]
    fn waits_for_counters_to_catch_up_after_the_queue_empties() {
        let before = stats(0, 0, 0, 0);
        let mut api = Fake::new(vec![Ok(stats(0, 0, 8, 0)), Ok(stats(0, 0, 10, 0))])
            .with_logs(0..10, "processed");
        let v = run(&mut api, &before, &acks(0..10, Expect::Processed));
        assert!(v.ok, "{:?}", v.failures);
        assert_eq!(v.lost, 0);
    }

    #[test]
    fn times_out_when_the_queue_never_drains() {
        let before = stats(0, 0, 0, 0);
        let mut api = Fake::new(vec![Ok(stats(40, 2, 58, 0))]).with_logs(0..100, "processed");
        let v = run(&mut api, &before, &acks(0..100, Expect::Processed));
        assert!(!v.ok);
        assert!(!v.drained);
        assert!(
            v.failures[0].starts_with("timeout: queue not drained"),
            "{:?}",
            v.failures
        );
        assert!(v.failures[0].contains("queue_size 40 + in_flight 2"));
        assert!(v.drain_secs >= 0.3);
    }

    #[test]
    fn dead_is_only_allowed_for_bodies_expected_to_fail() {
        let before = stats(0, 0, 0, 0);
        let mut all = acks(0..5, Expect::Processed);
        all.extend(acks(5..8, Expect::Dead));
        // 5 processed, 3 dead: all as expected
        let mut api = Fake::new(vec![Ok(stats(0, 0, 5, 3))])
            .with_logs(0..5, "processed")
            .with_logs(5..8, "dead");
        let v = run(&mut api, &before, &all);
        assert!(v.ok, "{:?}", v.failures);
        assert_eq!((v.expected_dead, v.failed_delta), (3, 3));

        // a generated (must-process) body ended dead: failure naming the last error
        let mut api = Fake::new(vec![Ok(stats(0, 0, 4, 4))])
            .with_logs(0..4, "processed")
            .with_logs(4..8, "dead");
        let v = run(&mut api, &before, &all);
        assert!(!v.ok);
        assert_eq!(v.lost, 0, "every ack finished; the problem is the state");
        assert_eq!(v.sample_bad, 1);
        assert!(
            v.sample_problems[0].contains(
                "id 4: dead but its body should have been processed (last_error: parse error)"
            ),
            "{:?}",
            v.sample_problems
        );
    }

    #[test]
    fn judge_states() {
        let p = Ack {
            id: 1,
            expect: Expect::Processed,
            seq: 0,
        };
        let d = Ack {
            id: 2,
            expect: Expect::Dead,
            seq: 1,
        };
        let e = |s: &str| LogEntry {
            id: 0,
            status: s.into(),
            attempts: 2,
            last_error: None,
        };
        assert_eq!(judge(p, &e("processed")), None);
        assert_eq!(judge(d, &e("dead")), None);
        assert_eq!(judge(d, &e("discarded")), None);
        assert!(judge(p, &e("discarded")).is_some());
        assert!(judge(d, &e("processed"))
            .unwrap()
            .contains("expected to end in dead letters"));
        assert!(judge(p, &e("queued")).unwrap().contains("still 'queued'"));
        assert!(judge(p, &e("processing")).is_some());
    }

    #[test]
    fn stats_errors_until_timeout_are_reported() {
        let before = stats(0, 0, 0, 0);
        let mut api = Fake::new(vec![Err("connection refused".into())]);
        let v = run(&mut api, &before, &acks(0..3, Expect::Processed));
        assert!(!v.ok);
        assert!(v.failures[0].contains("could not read stats after sending: connection refused"));
    }

    #[test]
    fn duplicate_free_sample_of_requested_size() {
        let s = sample_indices(10_000, 200, 42);
        assert_eq!(s.len(), 200);
        let mut d = s.clone();
        d.dedup();
        assert_eq!(d.len(), 200);
        assert!(s.iter().all(|&i| i < 10_000));
        assert!(*s.last().unwrap() > 5_000, "spread over the whole range");
        assert_eq!(sample_indices(5, 200, 42), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_indices(0, 200, 42), Vec::<usize>::new());
    }

    #[test]
    fn sample_is_capped() {
        let before = stats(0, 0, 0, 0);
        let mut api = Fake::new(vec![Ok(stats(0, 0, 1000, 0))]).with_logs(0..1000, "processed");
        let v = run(&mut api, &before, &acks(0..1000, Expect::Processed));
        assert!(v.ok);
        assert_eq!(v.sampled, 200);
        assert_eq!(api.log_calls, 200);
    }

    #[test]
    fn stats_parse() {
        let s = Stats::parse(r#"{"status":"healthy","queue_size":3,"in_flight":1,"total_received":9,"total_processed":4,"total_failed":1,"dead_letter_queue_size":1,"workers_running":4}"#).unwrap();
        assert_eq!(
            (s.pending(), s.finished(), s.status.as_str()),
            (4, 5, "healthy")
        );
        // the baseline server's answer is not stats
        let err = Stats::parse(r#"{"status":"queued","id":0}"#).unwrap_err();
        assert!(err.contains("queue_size"), "{err}");
    }
}
