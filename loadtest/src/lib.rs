//! hookvault-loadtest as a library: drive load at a hookvault server (or the baseline server),
//! verify nothing acknowledged was lost, and report.
//!
//! ```no_run
//! let opts = hookvault_loadtest::Options::closed("http://127.0.0.1:8001", 1000, 16);
//! let report = hookvault_loadtest::run(&opts).unwrap();
//! assert!(report.ok && report.verified && report.lost == 0, "{}", report.to_text());
//! ```

pub mod admin;
pub mod args;
pub mod baseline;
pub mod client;
pub mod driver;
pub mod payload;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod text;
pub mod verify;

use std::time::Duration;

pub use admin::AdminApi;
pub use baseline::BaselineServer;
pub use driver::{Load, SendOutcome};
pub use payload::{Expect, PayloadSpec, Payloads};
pub use report::{LatencySummary, Report, ScheduleLag};
pub use scenario::Scenario;
pub use schedule::Schedule;
pub use verify::{Verification, VerifyConfig};

use client::{HttpAdmin, HttpTransport, Transport};
use report::status_list;

/// Default server address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8001";

/// A complete description of one load-test run.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Base URL of the server.
    pub url: String,
    /// Ingest token, sent as `X-Webhook-Token`.
    pub token: Option<String>,
    /// Admin token for stats and logs, sent as `Authorization: Bearer`.
    pub admin_token: Option<String>,
    /// How requests are paced.
    pub load: Load,
    /// Sender threads (each with its own keep-alive connection).
    pub concurrency: usize,
    /// The named scenario this run came from, if any.
    pub scenario: Option<Scenario>,
    pub payload: PayloadSpec,
    /// Wait for the queue to drain and check every ack reached a final state.
    pub verify: bool,
    pub drain_timeout: Duration,
    /// How many acknowledged ids to check through the logs endpoint.
    pub verify_sample: usize,
    /// Non-2xx statuses that do not fail the run (e.g. 503 in a backlog test).
    pub allow_status: Vec<u16>,
    /// Per-request timeout (ingest and admin calls).
    pub request_timeout: Duration,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Print the report as one JSON object (the CLI's concern; `run` ignores it).
    pub json: bool,
    /// Run id in generated order numbers; `None` picks a fresh one.
    pub run_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: DEFAULT_URL.to_string(),
            token: None,
            admin_token: None,
            load: Load::Closed { total: 1000 },
            concurrency: 16,
            scenario: None,
            payload: PayloadSpec::Generated,
            verify: true,
            drain_timeout: Duration::from_secs(120),
            verify_sample: 200,
            allow_status: Vec::new(),
            request_timeout: Duration::from_secs(30),
            progress: false,
            json: false,
            run_id: None,
        }
    }
}

impl Options {
    /// Closed loop: `total` requests over `concurrency` connections, verification on.
    pub fn closed(url: &str, total: u64, concurrency: usize) -> Options {
        Options {
            url: url.to_string(),
            load: Load::Closed { total },
            concurrency,
            ..Options::default()
        }
    }

    /// Open loop: `rate` requests per second for `duration`, verification on, with
    /// [`default_open_concurrency`] sender threads.
    pub fn open(url: &str, rate: f64, duration: Duration) -> Options {
        Options {
            url: url.to_string(),
            load: Load::Open(Schedule::from_rate(rate, duration)),
            concurrency: default_open_concurrency(rate),
            ..Options::default()
        }
    }

    /// `scenario`, `closed` or `open`.
    pub fn name(&self) -> String {
        match (self.scenario, self.load) {
            (Some(sc), _) => sc.name().to_string(),
            (None, Load::Closed { .. }) => "closed".to_string(),
            (None, Load::Open(_)) => "open".to_string(),
        }
    }
}

/// Sender threads for an open loop at `rate`/s: enough that answers as slow as 250 ms do not
/// hold up the schedule, between 8 and 256.
pub fn default_open_concurrency(rate: f64) -> usize {
    ((rate * 0.25).ceil() as usize).clamp(8, 256)
}

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `--body` / `--fixtures` could not be loaded.
    Payload(String),
    /// Verification is on but the stats endpoint did not answer usefully before the run.
    Stats(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Payload(e) => write!(f, "payload: {e}"),
            Error::Stats(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs a load test over HTTP and returns its report (`report.ok` is the verdict).
pub fn run(opts: &Options) -> Result<Report, Error> {
    let timeout = opts.request_timeout;
    let make = || -> Box<dyn Transport> {
        Box::new(HttpTransport::new(
            &opts.url,
            opts.token.as_deref(),
            timeout,
        ))
    };
    let mut admin = HttpAdmin::new(&opts.url, opts.admin_token.as_deref(), timeout);
    run_with(opts, &make, &mut admin)
}

/// [`run`] with the transports and the admin API supplied (for tests with fakes).
pub fn run_with<'t>(
    opts: &Options,
    make: &(dyn Fn() -> Box<dyn Transport + 't> + Sync),
    admin: &mut dyn AdminApi,
) -> Result<Report, Error> {
    let run_id = opts.run_id.clone().unwrap_or_else(payload::new_run_id);
    let payloads = Payloads::load(&opts.payload, &run_id).map_err(Error::Payload)?;
    let before = if opts.verify {
        Some(admin.stats().map_err(|e| {
            Error::Stats(format!(
                "cannot verify: reading {}{} before the run failed: {e}\n\
                 (verification needs hookvault's stats endpoint; against the baseline server \
                 or any other server without it, pass --no-verify)",
                client::base_url(&opts.url),
                client::STATS_PATH
            ))
        })?)
    } else {
        None
    };
    let out = driver::drive(opts.load, opts.concurrency, &payloads, make, opts.progress);
    let verification = before.map(|before| {
        let cfg = VerifyConfig {
            drain_timeout: opts.drain_timeout,
            sample: opts.verify_sample,
            seed: out.sent ^ 0x9E37_79B9_7F4A_7C15,
            ..VerifyConfig::default()
        };
        let mut next_tick = Duration::from_secs(1);
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut printed = false;
        let mut on_poll = |s: &admin::Stats, elapsed: Duration| {
            if opts.progress && elapsed >= next_tick {
                next_tick = elapsed + Duration::from_secs(1);
                driver::progress_line(
                    &format!(
                        "[drain {:>3}s] queue_size {}, in_flight {}, processed {}, failed {}",
                        elapsed.as_secs(),
                        s.queue_size,
                        s.in_flight,
                        s.total_processed,
                        s.total_failed
                    ),
                    tty,
                );
                printed = true;
            }
        };
        let label = |seq| payloads.label(seq);
        let v = verify::drain_and_verify(admin, &before, &out.acks, &cfg, &mut on_poll, &label);
        if printed && tty {
            eprintln!();
        }
        v
    });
    Ok(build_report(opts, &payloads, &out, verification))
}

/// Turns what was measured into a report and a verdict.
pub fn build_report(
    opts: &Options,
    payloads: &Payloads,
    out: &SendOutcome,
    verification: Option<Verification>,
) -> Report {
    let send_secs = out.elapsed.as_secs_f64();
    let mut failures = Vec::new();
    if out.transport_errors > 0 {
        failures.push(format!(
            "{} transport errors (no HTTP answer){}",
            out.transport_errors,
            first_matching(&out.error_samples, "transport: ")
        ));
    }
    let unexpected: std::collections::BTreeMap<u16, u64> = out
        .other_status
        .iter()
        .filter(|(code, _)| !opts.allow_status.contains(code))
        .map(|(c, n)| (*c, *n))
        .collect();
    if !unexpected.is_empty() {
        failures.push(format!(
            "{} unexpected non-2xx answers: {}",
            unexpected.values().sum::<u64>(),
            status_list(&unexpected)
        ));
    }
    if out.unparsed_acks > 0 {
        failures.push(format!(
            "{} 2xx answers were not {{\"status\":\"queued\"|\"duplicate\",\"id\":N}}",
            out.unparsed_acks
        ));
    }
    if let Some(v) = &verification {
        failures.extend(v.failures.iter().cloned());
    }
    let schedule = match opts.load {
        Load::Open(s) => Some(ScheduleLag {
            target_rate: s.rate(),
            lag: LatencySummary::from_histogram(&out.lag),
            late_sends: out.late_sends,
        }),
        Load::Closed { .. } => None,
    };
    let drain_secs = verification.as_ref().map(|v| v.drain_secs);
    let end_to_end_rate = drain_secs.map(|d| {
        let t = send_secs + d;
        if t > 0.0 {
            out.queued as f64 / t
        } else {
            0.0
        }
    });
    Report {
        scenario: opts.name(),
        mode: if opts.load.is_open() {
            "open"
        } else {
            "closed"
        }
        .to_string(),
        url: client::base_url(&opts.url),
        payload: payloads.describe(),
        concurrency: opts.concurrency,
        sent: out.sent,
        ok_2xx: out.ok_2xx,
        queued: out.queued,
        duplicates: out.duplicates,
        unparsed_acks: out.unparsed_acks,
        other_status: out.other_status.clone(),
        transport_errors: out.transport_errors,
        error_samples: out.error_samples.clone(),
        send_secs,
        send_rate: if send_secs > 0.0 {
            out.sent as f64 / send_secs
        } else {
            0.0
        },
        latency: LatencySummary::from_histogram(&out.latency),
        schedule,
        verified: verification.as_ref().is_some_and(|v| v.ok),
        lost: verification.as_ref().map_or(0, |v| v.lost),
        verification,
        drain_secs,
        end_to_end_rate,
        ok: failures.is_empty(),
        failures,
    }
}

fn first_matching(samples: &[String], prefix: &str) -> String {
    samples
        .iter()
        .find_map(|s| s.strip_prefix(prefix))
        .map(|s| format!("; first: {s}"))
        .unwrap_or_default()
}

/// The three summary lines `--scenario seed-100` prints first: `Sent N webhooks in Xs`, `Success: K/N`, `Rate: R webhooks/sec`.
pub fn seed_lines(report: &Report) -> String {
    format!(
        "Sent {} webhooks in {:.2}s\nSuccess: {}/{}\nRate: {:.2} webhooks/sec\n",
        report.sent, report.send_secs, report.ok_2xx, report.sent, report.send_rate
    )
}
