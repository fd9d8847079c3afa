//! Latency histograms and the final report (text or one JSON object).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::verify::Verification;

/// Highest latency the histograms track: one hour, in microseconds (larger values are clamped).
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// A microsecond-resolution histogram, 3 significant digits, 1 µs .. 1 h.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3).expect("valid histogram bounds")
}

/// Records `d` in microseconds (at least 1, at most [`MAX_TRACKABLE_US`]).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.clamp(1, MAX_TRACKABLE_US));
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    /// `p50 1.234  p90 ...` with 3 decimals.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3}, n={})",
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.mean_ms,
            self.count
        )
    }
}

/// How far open-loop senders fell behind their schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduleLag {
    /// Requests the schedule asked for per second.
    pub target_rate: f64,
    /// Percentiles of (actual send time - intended send time).
    pub lag: LatencySummary,
    /// Sends that went out more than 1 ms late.
    pub late_sends: u64,
}

/// Everything a run measured. `ok` is the verdict; `failures` says why not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `closed`, `open`, or the scenario name.
    pub scenario: String,
    /// `closed` or `open`.
    pub mode: String,
    pub url: String,
    pub payload: String,
    pub concurrency: usize,
    /// Requests sent (answered or not).
    pub sent: u64,
    /// Answers with a 2xx status.
    pub ok_2xx: u64,
    /// 2xx answers saying `"queued"` (new messages).
    pub queued: u64,
    /// 2xx answers saying `"duplicate"`.
    pub duplicates: u64,
    /// 2xx answers whose body was not `{"status":..,"id":..}`.
    pub unparsed_acks: u64,
    /// Non-2xx answers by status code.
    pub other_status: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer (connect/read errors, timeouts).
    pub transport_errors: u64,
    /// A few example errors (transport errors, unexpected answers).
    pub error_samples: Vec<String>,
    /// From the first send to the last answer.
    pub send_secs: f64,
    /// `sent / send_secs`.
    pub send_rate: f64,
    /// Per-request latency (open loop: from the intended send time).
    pub latency: LatencySummary,
    /// Open loop only.
    pub schedule: Option<ScheduleLag>,
    /// Present when verification ran.
    pub verification: Option<Verification>,
    /// Drain time (verification only).
    pub drain_secs: Option<f64>,
    /// `queued acks / (send_secs + drain_secs)` (verification only).
    pub end_to_end_rate: Option<f64>,
    /// True only when verification ran and found every ack in its expected final state.
    pub verified: bool,
    /// Acknowledged webhooks that verification could not account for.
    pub lost: u64,
    /// Why the run failed, one line each.
    pub failures: Vec<String>,
    /// The verdict: no failures.
    pub ok: bool,
}

impl Report {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(s, "{:<18}{value}", format!("{label}:"));
        };
        line(
            "run",
            format!(
                "{} ({} loop, concurrency {}) -> {}",
                self.scenario, self.mode, self.concurrency, self.url
            ),
        );
        line("payload", self.payload.clone());
        line(
            "sent",
            format!(
                "{} in {:.3} s ({:.1} req/s)",
                self.sent, self.send_secs, self.send_rate
            ),
        );
        line(
            "2xx",
            format!(
                "{} (queued {}, duplicate {}{})",
                self.ok_2xx,
                self.queued,
                self.duplicates,
                if self.unparsed_acks > 0 {
                    format!(", unparseable {}", self.unparsed_acks)
                } else {
                    String::new()
                }
            ),
        );
        line("other codes", status_list(&self.other_status));
        line("transport errors", self.transport_errors.to_string());
        line("latency ms", self.latency.line());
        if let Some(sch) = &self.schedule {
            line(
                "behind schedule",
                format!(
                    "target {:.1} req/s; lag ms p50 {:.3}  p99 {:.3}  max {:.3}; {} sends >1 ms late",
                    sch.target_rate, sch.lag.p50_ms, sch.lag.p99_ms, sch.lag.max_ms, sch.late_sends
                ),
            );
        }
        match &self.verification {
            None => {
                line("drain", "not measured (--no-verify)".to_string());
                line("end-to-end", "not measured (--no-verify)".to_string());
            }
            Some(v) => {
                line(
                    "drain",
                    format!(
                        "{:.3} s{}",
                        v.drain_secs,
                        if v.drained { "" } else { " (timed out)" }
                    ),
                );
                if let Some(rate) = self.end_to_end_rate {
                    line(
                        "end-to-end",
                        format!("{rate:.1} webhooks/s (acked / (send + drain))"),
                    );
                }
                line(
                    "verification",
                    format!(
                        "{}: {} acked ({} expected dead); processed +{}, failed +{}; lost {}; sampled {} ids, {} bad",
                        if v.ok { "OK" } else { "FAILED" },
                        v.acked,
                        v.expected_dead,
                        v.processed_delta,
                        v.failed_delta,
                        v.lost,
                        v.sampled,
                        v.sample_bad
                    ),
                );
                for p in &v.sample_problems {
                    line("  sample", p.clone());
                }
            }
        }
        for e in &self.error_samples {
            line("  error", e.clone());
        }
        if self.ok {
            line("result", "PASS".to_string());
        } else {
            for f in &self.failures {
                line("FAIL", f.clone());
            }
        }
        s
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("report serializes")
    }
}

/// `503 x12, 413 x1` or `none`.
pub fn status_list(counts: &BTreeMap<u16, u64>) -> String {
    if counts.is_empty() {
        return "none".to_string();
    }
    counts
        .iter()
        .map(|(code, n)| format!("{code} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1000);
        // 3 significant digits: values within 0.1 %
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 0.001;
        assert!(close(s.p50_ms, 500.0), "{}", s.p50_ms);
        assert!(close(s.p90_ms, 900.0), "{}", s.p90_ms);
        assert!(close(s.p99_ms, 990.0), "{}", s.p99_ms);
        assert!(close(s.p999_ms, 999.0), "{}", s.p999_ms);
        assert!(close(s.max_ms, 1000.0), "{}", s.max_ms);
        assert!(close(s.min_ms, 1.0), "{}", s.min_ms);
        assert!(close(s.mean_ms, 500.5), "{}", s.mean_ms);
    }

    #[test]
    fn microsecond_resolution_and_clamping() {
        let mut h = new_histogram();
        record(&mut h, Duration::from_micros(123));
        record(&mut h, Duration::from_nanos(10)); // below 1 µs -> 1 µs
        record(&mut h, Duration::from_secs(10 * 3600)); // above 1 h -> clamped, not dropped
        assert_eq!(h.len(), 3);
        assert_eq!(h.min(), 1);
        assert_eq!(h.value_at_quantile(0.5), 123);
        assert!(h.max() >= MAX_TRACKABLE_US);
        let s = LatencySummary::from_histogram(&h);
        assert!(s.line().contains("p50 0.123"), "{}", s.line());
    }

    #[test]
    fn empty_histogram_is_all_zero() {
        assert_eq!(
            LatencySummary::from_histogram(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn text_and_json() {
        let mut r = Report {
            scenario: "closed".into(),
            mode: "closed".into(),
            url: "http://x".into(),
            sent: 10,
            ok_2xx: 8,
            queued: 8,
            transport_errors: 1,
            ..Report::default()
        };
        r.other_status.insert(503, 1);
        r.failures.push("1 unexpected answers: 503 x1".into());
        let text = r.to_text();
        assert!(text.contains("other codes:      503 x1"), "{text}");
        assert!(text.contains("FAIL:             1 unexpected"), "{text}");
        assert!(
            text.contains("drain:            not measured (--no-verify)"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["sent"], 10);
        assert_eq!(v["other_status"]["503"], 1);
        assert_eq!(v["ok"], false);
        assert!(!r.to_json().contains('\n'));
    }
}
