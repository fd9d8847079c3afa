//! No silent outage: a thread that asks our own listener for `/healthz`, like a client would.
//! tiny_http serves from one accept thread; when it dies (it stops at the first `accept`
//! error, and panics when it cannot start a connection thread: `TasksMax`, `RLIMIT_NPROC`,
//! memory) the listening socket goes with it while the process lives on, and a service
//! manager watching only the process would never restart it.
//!
//! When a handler thread hears from tiny_http that its accept loop ended, the watchdog acts at
//! once; when the gate cannot accept a client or connect to tiny_http, it checks at once.
//! Otherwise it checks every [`CHECK_EVERY`] (or every `WatchdogSec/2` when systemd's
//! watchdog asks for less, so every `WATCHDOG=1` follows a passed check), and after a failed
//! check every [`RETRY_EVERY`]; after [`FAILURES`] failed checks in a row it logs why and calls
//! its `on_dead` action (`serve` exits with code 71, so systemd's `Restart=on-failure`
//! restarts it). A check is skipped, and counts as passed, when since the last one a new
//! client connection got its first answer through the gate ([`Activity::answered`]; in direct mode there is no such count and it always asks): that
//! client took the same path the check would. So an idle server is asked once per period, and
//! a busy one with new clients not at all.
//!
//! Detection: an accept loop that ends with an error, at once; a listener that refuses or
//! whose accept thread panicked (new connections are refused), within `2 × RETRY_EVERY` (2 s)
//! of the first client the gate could not pass on, and within `CHECK_EVERY + 2 ×
//! RETRY_EVERY` (12 s) with no client; one that accepts but never answers, within `CHECK_EVERY + 3 ×
//! ANSWER_WITHIN + 2 × RETRY_EVERY` (21 s), and systemd's watchdog, fed only after passed
//! checks, bounds that to `WatchdogSec` too (20 s in the shipped unit). Each period is
//! shorter when `WatchdogSec/2` is. The period is what an idle server pays: a check wakes
//! about eight threads (this one; in gate mode the gate's accept and connection threads;
//! tiny_http's accept and pool threads, a handler), under one wake-up per second at 10 s.
//! In direct mode a check that gets no answer first wakes the stall guard
//! ([`super::stall_guard`]): a check stranded in tiny_http's pool is rescued, not counted
//! as an outage twice.
//!
//! While checks pass it also feeds systemd's watchdog (`WATCHDOG=1`) and, after the first
//! pass, says `READY=1` (see [`crate::base::notify`]): readiness means a client can be answered.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use super::activity::Activity;
use super::stall_guard::Poke;
use crate::base::lifecycle::Background;
use crate::base::notify::Notifier;

/// How often the listener is asked while it answers (at most; see [`check_period`]).
pub const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How soon a failed check is repeated.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long one check waits for a connection and an answer. Generous: a listener that
/// answers slowly under load is alive.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// Failed checks in a row that mean the listener is gone.
pub const FAILURES: u32 = 3;

/// What to do when the listener is gone (`serve`: log and exit 71).
pub type OnDead = Arc<dyn Fn(&str) + Send + Sync>;

/// The watchdog thread.
pub struct ListenerWatchdog;

impl ListenerWatchdog {
    /// Watches the listener at `listen`. `accept_died` carries tiny_http's report that its
    /// accept loop ended; `activity` counts new clients answered through the gate. The
    /// component's stop ends it (the service is stopping).
    pub fn start(
        listen: SocketAddr,
        on_dead: OnDead,
        accept_died: Receiver<String>,
        activity: Arc<Activity>,
        stall_guard: Option<Poke>,
    ) -> std::io::Result<Background> {
        let target = crate::base::net::reachable(listen);
        let notifier = Notifier::from_env();
        let ping_every = Notifier::watchdog_interval();
        let period = check_period(ping_every);
        let trouble = activity.trouble();
        let mut watchdog = Background::new("http-watchdog");
        watchdog.spawn_with_stack("http-watchdog", 256 * 1024, move |stop| {
            let mut failures = 0;
            let mut ready = false;
            let mut last_ping: Option<Instant> = None;
            let mut answered = activity.answered();
            let mut skip = false;
            loop {
                let mut forced = false;
                let result = if skip { Ok(()) } else { check(target) };
                if !skip {
                    answered = activity.answered(); // not counting this check's own
                }
                let passed = result.is_ok();
                let why = match result {
                    Ok(()) => {
                        failures = 0;
                        if let Some(n) = &notifier {
                            if !ready {
                                n.send(&format!("READY=1\nSTATUS=serving on http://{listen}"));
                            }
                            let due = match (ping_every, last_ping) {
                                (Some(every), Some(at)) => at.elapsed() >= every,
                                (Some(_), None) => true,
                                (None, _) => false,
                            };
                            if due {
                                n.send("WATCHDOG=1");
                                last_ping = Some(Instant::now());
                            }
                        }
                        ready = true;
                        None
                    }
                    Err(why) => {
                        // A check stranded in tiny_http's pool is not an outage.
                        if let Some(guard) = &stall_guard {
                            guard.poke_now();
                        }
                        failures += 1;
                        log::warn!(
                            "http: self-check {failures}/{FAILURES} of http://{target}/healthz failed: {why}"
                        );
                        (failures >= FAILURES).then_some(why)
                    }
                };
                // After a skip, the next check is due a period after the answer that
                // stood for it, so a listener that died right after it is not missed
                // for longer than a period.
                let wait = match (passed, skip) {
                    (false, _) => RETRY_EVERY,
                    (true, false) => period,
                    (true, true) => period
                        .saturating_sub(activity.since_answered())
                        .max(Duration::from_millis(10)),
                };
                let why = why.or_else(|| {
                    select! {
                        recv(stop.receiver()) -> _ => Some(String::new()),
                        recv(accept_died) -> e => Some(format!(
                            "the accept loop ended: {}",
                            e.unwrap_or_else(|_| "no reason given".into())
                        )),
                        recv(trouble) -> _ => {
                            forced = true;
                            None
                        }
                        default(wait) => None,
                    }
                });
                // A new client answered within the last period: that stands for a check.
                let now = activity.answered();
                skip = passed
                    && !forced
                    && ready
                    && now != answered
                    && activity.since_answered() < period;
                answered = now;
                match why {
                    None => {}
                    Some(why) if why.is_empty() => return,
                    Some(why) => {
                        // A stop that raced with the failure: the listener closed on purpose.
                        if stop.is_stopping() {
                            return;
                        }
                        let why = format!("the HTTP listener on {listen} stopped answering ({why})");
                        log::error!("{why}; exiting so the service manager restarts hookvault");
                        if let Some(n) = &notifier {
                            n.send(&format!("STATUS={why}"));
                        }
                        on_dead(&why);
                        return;
                    }
                }
            }
        })?;
        Ok(watchdog)
    }
}

/// How often to check while checks pass: [`CHECK_EVERY`], or half of systemd's `WatchdogSec`
/// (`ping_every`) when that is shorter, so a ping always follows a recent check.
pub fn check_period(ping_every: Option<Duration>) -> Duration {
    ping_every.map_or(CHECK_EVERY, |every| every.min(CHECK_EVERY))
}

/// One check: an HTTP status line in answer to `GET /healthz` within [`ANSWER_WITHIN`].
fn check(target: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    let mut conn =
        TcpStream::connect_timeout(&target, ANSWER_WITHIN).map_err(|e| format!("connect: {e}"))?;
    let left = ANSWER_WITHIN
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(10));
    conn.set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookvault\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match conn.read(&mut head[got..]) {
            Ok(0) => return Err("closed without an answer".into()),
            Ok(n) => got += n,
            Err(e) => return Err(format!("no answer within {ANSWER_WITHIN:?}: {e}")),
        }
    }
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&head)
        ))
    }
}
