//! Command-line parsing (hand-rolled: `--opt VALUE`, `--opt=VALUE`, `-n VALUE`).

use std::path::PathBuf;
use std::time::Duration;

use crate::driver::Load;
use crate::payload::PayloadSpec;
use crate::scenario::{Scenario, DEFAULT_SUSTAINED};
use crate::schedule::Schedule;
use crate::{default_open_concurrency, Options};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a load test.
    Run(Options),
    /// Serve the fixed baseline answer.
    Baseline { listen: String, threads: usize },
    /// Print [`HELP`].
    Help,
}

/// Default closed-loop request count and concurrency.
pub const DEFAULT_REQUESTS: u64 = 1000;
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default baseline listen address.
pub const DEFAULT_BASELINE_LISTEN: &str = "127.0.0.1:8001";

pub const HELP: &str = "\
hookvault-loadtest: load generator and HTTP baseline for hookvault

USAGE:
    hookvault-loadtest [OPTIONS]                       run a load test
    hookvault-loadtest --scenario NAME [OPTIONS]       run one of the named scenarios
    hookvault-loadtest baseline-server [--listen ADDR] [--threads N]
    hookvault-loadtest --help

Requests go to POST <url>/api/v2/webhooks/orders. With neither -n nor --rate/--duration nor
--scenario, the run is a closed loop of -n 1000 -c 16.

TARGET:
    --url URL               base URL of the server [default: http://127.0.0.1:8001]
    --token TOKEN           ingest token, sent as the X-Webhook-Token header
    --admin-token TOKEN     admin token for the stats and logs endpoints
                            (Authorization: Bearer TOKEN)

LOAD (closed loop):
    -n, --requests N        send N requests in total; each sender sends its next request as
                            soon as it has the previous answer
    -c, --concurrency C     sender threads, one keep-alive connection each [default: 16]

LOAD (open loop: a fixed schedule, latency measured from each request's intended send time,
so a stalled server cannot hide latency through coordinated omission):
    --rate R                R requests per second (decimals allowed)
    --duration D            run length [default: 60s]; with -n instead of --rate, sends N
                            requests evenly over D
    -c, --concurrency C     sender threads [default: rate/4, between 8 and 256]; too few and
                            senders fall behind schedule (the report says by how much)

SCENARIOS (--scenario NAME):
    seed-100                100 concurrent requests (closed loop, -c 100); prints three
                            'Sent/Success/Rate' lines, then the report (not with --json)
    black-friday            500 webhooks over 5 minutes, open loop
    bot-drop                300 webhooks over 10 seconds, open loop
    extreme-burst           1000 webhooks over 30 seconds, open loop
    sustained               --rate R (required) for --duration D [default: 60s], open loop
    Scenarios fix their load: -n, --rate and --duration are refused (except for sustained);
    -c may override the sender count of the open-loop ones.

PAYLOAD:
    (default)               unique Discord order bodies (label/value description lines), order number
                            LT-<run id>-<seq>; every one must end 'processed'
    --body FILE             send FILE's bytes every time (expected to end 'dead' when a
                            sibling FILE.expected.json holds \"invalid\")
    --fixtures DIR          replay every *.json in DIR round-robin, skipping *.expected.json;
                            bodies whose NAME.expected.json holds \"invalid\" must end 'dead'

VERIFICATION (on by default):
    --no-verify             skip it (required against the baseline server)
    --drain-timeout D       how long to wait for queue_size + in_flight to reach 0 after
                            sending [default: 120s]
    --verify-sample N       acknowledged ids to check via GET /api/v2/webhooks/logs/{id}
                            [default: 200]
    --allow-status CODES    comma-separated non-2xx codes that do not fail the run
                            (e.g. 503,429); others do
    Before sending it reads the stats; after, it waits for the queue to drain and checks that
    total_processed + total_failed grew by at least the number of acks and that sampled ids
    are 'processed' (or 'dead' where the body was expected to fail).

OUTPUT:
    --json                  print the report as one JSON object on stdout (FAIL reasons
                            also go to stderr)
    -q, --quiet             no progress lines on stderr (otherwise one a second on runs over 2 s)
    --timeout D             per-request timeout [default: 30s]

BASELINE SERVER (baseline-server):
    --listen ADDR           address to listen on [default: 127.0.0.1:8001]
    --threads N             handler threads [default: number of CPUs]
    Answers every request with 200 {\"status\":\"queued\",\"id\":0} after reading its body, and
    nothing else: load-test it with --no-verify to see this machine's HTTP ceiling.

DURATIONS: 500ms, 30s, 5m, 1h, or plain seconds (2.5).

EXIT STATUS: 0 all good; 1 the run failed (loss, unexpected non-2xx answers, transport errors,
drain timeout, wrong final states; the report's FAIL lines say which); 2 bad arguments or the
run could not start.
";

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    if args.first().map(String::as_str) == Some("baseline-server") {
        return parse_baseline(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("help") {
        return Ok(Command::Help);
    }
    parse_run(&args)
}

/// Splits `--opt=value` and fetches the value of options that take one.
struct Cursor<'a> {
    args: &'a [String],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The next option name and its inline `=value`, if any.
    fn next_flag(&mut self) -> Option<Result<(String, Option<String>), String>> {
        let arg = self.args.get(self.pos)?;
        self.pos += 1;
        if !arg.starts_with('-') || arg == "-" {
            return Some(Err(format!("unexpected argument '{arg}' (see --help)")));
        }
        Some(Ok(match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        }))
    }

    fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, String> {
        if let Some(v) = inline {
            return Ok(v);
        }
        match self.args.get(self.pos) {
            Some(v) => {
                self.pos += 1;
                Ok(v.clone())
            }
            None => Err(format!("{name} needs a value (see --help)")),
        }
    }
}

fn parse_baseline(args: &[String]) -> Result<Command, String> {
    let mut listen = DEFAULT_BASELINE_LISTEN.to_string();
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut cur = Cursor { args, pos: 0 };
    while let Some(flag) = cur.next_flag() {
        let (name, inline) = flag?;
        match name.as_str() {
            "--listen" => listen = cur.value(&name, inline)?,
            "--threads" => threads = positive(&name, &cur.value(&name, inline)?)? as usize,
            "-h" | "--help" => return Ok(Command::Help),
            other => {
                return Err(format!(
                    "unknown option '{other}' for baseline-server (it takes --listen ADDR and --threads N)"
                ))
            }
        }
    }
    Ok(Command::Baseline { listen, threads })
}

fn parse_run(args: &[String]) -> Result<Command, String> {
    let mut o = Options {
        progress: true,
        ..Options::default()
    };
    let mut requests: Option<u64> = None;
    let mut concurrency: Option<usize> = None;
    let mut rate: Option<f64> = None;
    let mut duration: Option<Duration> = None;
    let mut scenario: Option<Scenario> = None;
    let mut body: Option<PathBuf> = None;
    let mut fixtures: Option<PathBuf> = None;

    let mut cur = Cursor { args, pos: 0 };
    while let Some(flag) = cur.next_flag() {
        let (name, inline) = flag?;
        if inline.is_some() && FLAGS_WITHOUT_VALUE.contains(&name.as_str()) {
            return Err(format!("{name} takes no value"));
        }
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => {
                let url = cur.value(&name, inline)?;
                if !url.starts_with("http://") {
                    return Err(format!(
                        "--url must start with http:// (got '{url}'); e.g. --url http://127.0.0.1:8001"
                    ));
                }
                o.url = url;
            }
            "--token" => o.token = Some(cur.value(&name, inline)?),
            "--admin-token" => o.admin_token = Some(cur.value(&name, inline)?),
            "-n" | "--requests" => requests = Some(positive(&name, &cur.value(&name, inline)?)?),
            "-c" | "--concurrency" => {
                concurrency = Some(positive(&name, &cur.value(&name, inline)?)? as usize)
            }
            "--rate" => {
                let v = cur.value(&name, inline)?;
                let r: f64 = v.parse().map_err(|_| {
                    format!("--rate needs a number of requests per second, got '{v}'")
                })?;
                if !(r.is_finite() && r > 0.0) {
                    return Err(format!("--rate must be above 0, got '{v}'"));
                }
                rate = Some(r);
            }
            "--duration" => duration = Some(parse_duration(&name, &cur.value(&name, inline)?)?),
            "--scenario" => {
                let v = cur.value(&name, inline)?;
                scenario = Some(Scenario::parse(&v).ok_or_else(|| {
                    format!(
                        "unknown scenario '{v}'; one of: {}",
                        Scenario::ALL.map(|s| s.name()).join(", ")
                    )
                })?);
            }
            "--body" => body = Some(PathBuf::from(cur.value(&name, inline)?)),
            "--fixtures" => fixtures = Some(PathBuf::from(cur.value(&name, inline)?)),
            "--no-verify" => o.verify = false,
            "--drain-timeout" => {
                o.drain_timeout = parse_duration(&name, &cur.value(&name, inline)?)?
            }
            "--verify-sample" => {
                let v = cur.value(&name, inline)?;
                o.verify_sample = v
                    .parse()
                    .map_err(|_| format!("--verify-sample needs a whole number, got '{v}'"))?;
            }
            "--allow-status" => {
                let v = cur.value(&name, inline)?;
                for code in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    match code.parse::<u16>() {
                        Ok(c) if (100..600).contains(&c) => o.allow_status.push(c),
                        _ => {
                            return Err(format!(
                            "--allow-status takes comma-separated HTTP status codes, got '{code}'"
                        ))
                        }
                    }
                }
            }
            "--timeout" => o.request_timeout = parse_duration(&name, &cur.value(&name, inline)?)?,
            "--json" => o.json = true,
            "-q" | "--quiet" => o.progress = false,
            other => return Err(format!("unknown option '{other}' (see --help)")),
        }
    }

    o.payload = match (body, fixtures) {
        (Some(_), Some(_)) => return Err("--body and --fixtures exclude each other".to_string()),
        (Some(f), None) => PayloadSpec::Body(f),
        (None, Some(d)) => PayloadSpec::Fixtures(d),
        (None, None) => PayloadSpec::Generated,
    };

    o.scenario = scenario;
    let (load, default_c) = match scenario {
        Some(Scenario::Sustained) => {
            if requests.is_some() {
                return Err("sustained takes --rate R [--duration D], not -n".to_string());
            }
            let r = rate.ok_or("--scenario sustained needs --rate R (requests per second)")?;
            let d = duration.unwrap_or(DEFAULT_SUSTAINED);
            (
                Load::Open(Schedule::from_rate(r, d)),
                default_open_concurrency(r),
            )
        }
        Some(sc) => {
            if requests.is_some() || rate.is_some() || duration.is_some() {
                return Err(format!(
                    "scenario {} fixes its load; drop -n/--rate/--duration (or use --scenario sustained)",
                    sc.name()
                ));
            }
            let load = sc.fixed_load().expect("fixed scenario");
            match load {
                Load::Closed { total } => {
                    if concurrency.is_some() {
                        return Err(format!(
                            "scenario {} fixes its concurrency; drop -c",
                            sc.name()
                        ));
                    }
                    (load, total as usize)
                }
                Load::Open(s) => (load, default_open_concurrency(s.rate())),
            }
        }
        None => match (requests, rate, duration) {
            (Some(_), Some(_), _) => return Err(
                "-n and --rate exclude each other: -n N [--duration D] or --rate R [--duration D]"
                    .to_string(),
            ),
            (_, Some(r), d) => {
                let d = d.unwrap_or(DEFAULT_SUSTAINED);
                (
                    Load::Open(Schedule::from_rate(r, d)),
                    default_open_concurrency(r),
                )
            }
            (Some(n), None, Some(d)) => {
                let s = Schedule::new(n, d);
                (Load::Open(s), default_open_concurrency(s.rate()))
            }
            (None, None, Some(_)) => {
                return Err(
                    "--duration needs --rate R (or -n N to spread N requests over it)".to_string(),
                )
            }
            (n, None, None) => (
                Load::Closed {
                    total: n.unwrap_or(DEFAULT_REQUESTS),
                },
                DEFAULT_CONCURRENCY,
            ),
        },
    };
    o.load = load;
    o.concurrency = concurrency.unwrap_or(default_c);
    Ok(Command::Run(o))
}

const FLAGS_WITHOUT_VALUE: [&str; 6] = ["--no-verify", "--json", "--quiet", "-q", "--help", "-h"];

fn positive(name: &str, v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} needs a whole number above 0, got '{v}'")),
    }
}

/// `500ms`, `30s`, `5m`, `1h`, or plain (possibly fractional) seconds.
pub fn parse_duration(name: &str, v: &str) -> Result<Duration, String> {
    let bad = || format!("{name} needs a duration like 500ms, 30s, 5m, 1h or 2.5, got '{v}'");
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = x * scale;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("{name} must be above 0, got '{v}'"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().copied()) {
            Ok(Command::Run(o)) => o,
            other => panic!("{args:?} -> {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        parse(args.iter().copied()).unwrap_err()
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert_eq!(o.url, "http://127.0.0.1:8001");
        assert_eq!(o.load, Load::Closed { total: 1000 });
        assert_eq!(o.concurrency, 16);
        assert!(o.verify && o.progress && !o.json);
        assert_eq!(o.drain_timeout, Duration::from_secs(120));
        assert_eq!(o.payload, PayloadSpec::Generated);
    }

    #[test]
    fn closed_loop_and_common_options() {
        let o = run(&[
            "-n",
            "20000",
            "-c",
            "32",
            "--url=http://127.0.0.1:9000/",
            "--token",
            "t1",
            "--admin-token",
            "a1",
            "--no-verify",
            "--json",
            "-q",
            "--timeout",
            "5s",
            "--allow-status",
            "503, 429",
            "--verify-sample",
            "50",
            "--drain-timeout",
            "2m",
        ]);
        assert_eq!(o.load, Load::Closed { total: 20000 });
        assert_eq!(o.concurrency, 32);
        assert_eq!(o.url, "http://127.0.0.1:9000/");
        assert_eq!(o.token.as_deref(), Some("t1"));
        assert_eq!(o.admin_token.as_deref(), Some("a1"));
        assert!(!o.verify && o.json && !o.progress);
        assert_eq!(o.request_timeout, Duration::from_secs(5));
        assert_eq!(o.allow_status, vec![503, 429]);
        assert_eq!(o.verify_sample, 50);
        assert_eq!(o.drain_timeout, Duration::from_secs(120));
    }

    #[test]
    fn open_loop() {
        let o = run(&["--rate", "200", "--duration", "1s"]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(200, Duration::from_secs(1)))
        );
        assert_eq!(o.concurrency, 50);
        let o = run(&["--rate=2.5"]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(150, Duration::from_secs(60)))
        );
        assert_eq!(o.concurrency, 8);
        let o = run(&["-n", "300", "--duration", "10s", "-c", "3"]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(300, Duration::from_secs(10)))
        );
        assert_eq!(o.concurrency, 3);
    }

    #[test]
    fn scenarios() {
        let o = run(&["--scenario", "seed-100"]);
        assert_eq!((o.load, o.concurrency), (Load::Closed { total: 100 }, 100));
        assert_eq!(o.scenario, Some(Scenario::Seed100));
        let o = run(&["--scenario", "black-friday", "-c", "4"]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(500, Duration::from_secs(300)))
        );
        assert_eq!(o.concurrency, 4);
        let o = run(&["--scenario", "extreme-burst"]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(1000, Duration::from_secs(30)))
        );
        let o = run(&[
            "--scenario",
            "sustained",
            "--rate",
            "50",
            "--duration",
            "5m",
        ]);
        assert_eq!(
            o.load,
            Load::Open(Schedule::new(15000, Duration::from_secs(300)))
        );
        assert_eq!(o.name(), "sustained");
    }

    #[test]
    fn payload_options() {
        assert_eq!(
            run(&["--body", "b.json"]).payload,
            PayloadSpec::Body("b.json".into())
        );
        assert_eq!(
            run(&["--fixtures", "d"]).payload,
            PayloadSpec::Fixtures("d".into())
        );
        assert!(err(&["--body", "b", "--fixtures", "d"]).contains("exclude each other"));
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration("--duration", s);
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(d("2.5"), Ok(Duration::from_millis(2500)));
        assert!(d("0s").unwrap_err().contains("above 0"));
        assert!(d("soon").unwrap_err().contains("like 500ms"));
        assert!(d("-1").is_err());
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(err(&["--bogus"]).contains("unknown option '--bogus'"));
        assert!(err(&["stray"]).contains("unexpected argument 'stray'"));
        assert!(err(&["-n"]).contains("-n needs a value"));
        assert!(err(&["-n", "0"]).contains("above 0"));
        assert!(err(&["-c", "x"]).contains("-c needs a whole number"));
        assert!(err(&["--rate", "0"]).contains("above 0"));
        assert!(err(&["--rate", "fast"]).contains("number of requests per second"));
        assert!(err(&["-n", "5", "--rate", "5"]).contains("exclude each other"));
        assert!(err(&["--scenario", "nope"]).contains("unknown scenario 'nope'; one of: seed-100"));
        assert!(err(&["--scenario", "bot-drop", "-n", "5"]).contains("fixes its load"));
        assert!(err(&["--scenario", "seed-100", "-c", "5"]).contains("fixes its concurrency"));
        assert!(err(&["--scenario", "sustained"]).contains("needs --rate"));
        assert!(err(&["--url", "127.0.0.1:8001"]).contains("must start with http://"));
        assert!(err(&["--allow-status", "5xx"]).contains("status codes"));
        assert!(err(&["--duration", "5s"]).contains("needs --rate"));
        assert!(err(&["--json=yes"]).contains("takes no value"));
    }

    #[test]
    fn help_and_baseline() {
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["-n", "5", "-h"]), Ok(Command::Help));
        assert_eq!(parse(["help"]), Ok(Command::Help));
        assert_eq!(
            parse([
                "baseline-server",
                "--listen",
                "127.0.0.1:0",
                "--threads",
                "3"
            ]),
            Ok(Command::Baseline {
                listen: "127.0.0.1:0".into(),
                threads: 3
            })
        );
        let Ok(Command::Baseline { listen, threads }) = parse(["baseline-server"]) else {
            panic!()
        };
        assert_eq!(listen, "127.0.0.1:8001");
        assert!(threads >= 1);
        assert!(parse(["baseline-server", "-n", "5"])
            .unwrap_err()
            .contains("for baseline-server"));
    }

    #[test]
    fn help_documents_every_option() {
        for opt in [
            "--url",
            "--token",
            "--admin-token",
            "--requests",
            "--concurrency",
            "--rate",
            "--duration",
            "--scenario",
            "--body",
            "--fixtures",
            "--no-verify",
            "--drain-timeout",
            "--verify-sample",
            "--allow-status",
            "--json",
            "--quiet",
            "--timeout",
            "--listen",
            "--threads",
            "seed-100",
            "black-friday",
            "bot-drop",
            "extreme-burst",
            "sustained",
        ] {
            assert!(HELP.contains(opt), "--help does not mention {opt}");
        }
    }
}
