//! The alert conditions, evaluated on one observation at a time: which conditions started,
//! changed or ended since the last one, and how many new dead letters there are. Pure: it
//! holds no clock and does no I/O, so every transition is unit-tested below. Folding per
//! target is `digest.rs`.

use std::collections::BTreeMap;

use super::alert::Severity;
use crate::settings::{AlertEvent, AlertingSettings};

/// The figures one evaluation looks at. `None` means "not known this time" (a backend
/// without the figure, a read that failed): the condition keeps its state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub at_ms: i64,
    /// The stats `status` (`healthy`, `degraded`, `unhealthy`) and its reasons.
    pub status: String,
    pub status_reasons: Vec<String>,
    /// The durable count of messages that went to dead letters (it only grows).
    pub dead_total: u64,
    /// The first dead letter since the last observation, when it could be read.
    pub first_new_dead: Option<DeadSample>,
    pub oldest_queued_age_s: Option<u64>,
    pub relay_targets: Vec<RelayTargetHealth>,
    pub disk_free_pct: Option<f64>,
    pub db_size_bytes: Option<u64>,
}

/// One dead letter, as an alert names it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadSample {
    pub id: i64,
    pub error: String,
    /// The source it came in through (`[[sources]]`), and its ingest path.
    pub source: String,
    pub path: String,
}

/// A relay target as the alerts see it (its URL never).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayTargetHealth {
    pub name: String,
    pub dead: bool,
    /// Failing since (ms since the epoch), while it is failing and not dead.
    pub failing_since_ms: Option<i64>,
}

/// A change the evaluation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A condition started, or changed while active (degraded → unhealthy).
    Started {
        event: AlertEvent,
        /// Tells the conditions of one event apart (a relay target's name; `status`).
        key: String,
        severity: Severity,
        summary: String,
        details: Vec<String>,
    },
    Ended {
        event: AlertEvent,
        key: String,
        summary: String,
    },
    DeadLetters {
        count: u64,
        first: Option<DeadSample>,
    },
}

impl Signal {
    pub fn event(&self) -> AlertEvent {
        match self {
            Signal::Started { event, .. } | Signal::Ended { event, .. } => *event,
            Signal::DeadLetters { .. } => AlertEvent::DeadLetter,
        }
    }
}

/// A condition found true: what it looks like now.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    severity: Severity,
    /// A change of level (degraded → unhealthy, failing → dead) is worth telling; a change
    /// in wording alone is not.
    level: &'static str,
    summary: String,
    details: Vec<String>,
}

/// The conditions active now and the dead-letter count already told.
#[derive(Debug, Default)]
pub struct Conditions {
    active: BTreeMap<(AlertEvent, String), Finding>,
    dead_seen: Option<u64>,
}

impl Conditions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates one observation: the signals, in a stable order (event, then key).
    /// Dead letters already there at the first observation are not new.
    pub fn observe(&mut self, obs: &Observation, limits: &AlertingSettings) -> Vec<Signal> {
        let mut signals = Vec::new();
        for (event, key, finding) in findings(obs, limits) {
            let id = (event, key.clone());
            match finding {
                Known::Unknown => {}
                Known::False => {
                    if let Some(was) = self.active.remove(&id) {
                        signals.push(Signal::Ended {
                            event,
                            key,
                            summary: was.summary,
                        });
                    }
                }
                Known::True(now) => {
                    let changed = self
                        .active
                        .get(&id)
                        .is_none_or(|was| was.level != now.level);
                    if changed {
                        signals.push(Signal::Started {
                            event,
                            key,
                            severity: now.severity,
                            summary: now.summary.clone(),
                            details: now.details.clone(),
                        });
                    }
                    self.active.insert(id, now);
                }
            }
        }
        // A relay target that is no longer listed (removed from the configuration) ended.
        let listed: Vec<&str> = obs.relay_targets.iter().map(|t| t.name.as_str()).collect();
        let gone: Vec<(AlertEvent, String)> = self
            .active
            .keys()
            .filter(|(e, k)| *e == AlertEvent::Relay && !listed.contains(&k.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(was) = self.active.remove(&id) {
                signals.push(Signal::Ended {
                    event: id.0,
                    key: id.1,
                    summary: was.summary,
                });
            }
        }
        match self.dead_seen {
            Some(seen) if obs.dead_total > seen => signals.push(Signal::DeadLetters {
                count: obs.dead_total - seen,
                first: obs.first_new_dead.clone(),
            }),
            _ => {}
        }
        self.dead_seen = Some(self.dead_seen.unwrap_or(0).max(obs.dead_total));
        signals
    }

    /// Whether a condition is active now.
    #[cfg(test)]
    pub fn is_active(&self, event: AlertEvent, key: &str) -> bool {
        self.active.contains_key(&(event, key.to_string()))
    }
}

enum Known {
    True(Finding),
    False,
    Unknown,
}

/// Every condition the observation decides, with its key.
fn findings(obs: &Observation, limits: &AlertingSettings) -> Vec<(AlertEvent, String, Known)> {
    let mut out = Vec::new();
    out.push((AlertEvent::Status, "status".to_string(), status(obs)));
    out.push((
        AlertEvent::Backlog,
        "backlog".to_string(),
        match obs.oldest_queued_age_s {
            None => Known::Unknown,
            Some(age) if age > limits.backlog_age_s => Known::True(Finding {
                severity: Severity::Warning,
                level: "old",
                summary: format!(
                    "the oldest queued message has waited {} (alerting.backlog_age_s = {})",
                    span(age),
                    limits.backlog_age_s
                ),
                details: vec![
                    "Workers are not keeping up, or are stopped: see the stats' status_reasons."
                        .into(),
                ],
            }),
            Some(_) => Known::False,
        },
    ));
    for t in &obs.relay_targets {
        let failing_s = t
            .failing_since_ms
            .map(|since| ((obs.at_ms - since).max(0) / 1000) as u64);
        let known = if t.dead {
            Known::True(Finding {
                severity: Severity::Critical,
                level: "dead",
                summary: format!("relay target {} is dead", t.name),
                details: vec![
                    "Its deliveries go to dead letters until an operator retries them \
                     (POST /api/v2/deliveries/retry-failed)."
                        .into(),
                ],
            })
        } else {
            match failing_s {
                Some(s) if s >= limits.relay_failing_s => Known::True(Finding {
                    severity: Severity::Warning,
                    level: "failing",
                    summary: format!("relay target {} has been failing for {}", t.name, span(s)),
                    details: vec!["Its deliveries are retried with backoff.".into()],
                }),
                _ => Known::False,
            }
        };
        out.push((AlertEvent::Relay, t.name.clone(), known));
    }
    out.push((
        AlertEvent::Disk,
        "free".to_string(),
        match obs.disk_free_pct {
            None => Known::Unknown,
            Some(free) if free < limits.disk_free_pct => Known::True(Finding {
                severity: Severity::Critical,
                level: "low",
                summary: format!(
                    "{free:.1}% free on the database's disk (alerting.disk_free_pct = {})",
                    limits.disk_free_pct
                ),
                details: vec![
                    "When it is full, ingest answers 503 and senders retry later.".into(),
                ],
            }),
            Some(_) => Known::False,
        },
    ));
    if let Some(max) = limits.db_max_bytes {
        out.push((
            AlertEvent::Disk,
            "db_size".to_string(),
            match obs.db_size_bytes {
                None => Known::Unknown,
                Some(size) if size > max => Known::True(Finding {
                    severity: Severity::Warning,
                    level: "large",
                    summary: format!(
                        "the database is {size} bytes (alerting.db_max_bytes = {max})"
                    ),
                    details: vec!["Check storage.retention_days and the dead letters kept.".into()],
                }),
                Some(_) => Known::False,
            },
        ));
    }
    out
}

fn status(obs: &Observation) -> Known {
    let (severity, level) = match obs.status.as_str() {
        "healthy" => return Known::False,
        "degraded" => (Severity::Warning, "degraded"),
        "unhealthy" => (Severity::Critical, "unhealthy"),
        _ => return Known::Unknown,
    };
    Known::True(Finding {
        severity,
        level,
        summary: format!("hookvault is {level}"),
        details: obs.status_reasons.clone(),
    })
}

/// `42 s`, `12 min`, `3 h 5 min`: a duration an operator reads at a glance.
pub fn span(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(at_s: i64) -> Observation {
        Observation {
            at_ms: at_s * 1000,
            status: "healthy".into(),
            oldest_queued_age_s: Some(0),
            disk_free_pct: Some(50.0),
            db_size_bytes: Some(1000),
            ..Observation::default()
        }
    }

    fn kinds(signals: &[Signal]) -> Vec<String> {
        signals
            .iter()
            .map(|s| match s {
                Signal::Started { event, key, .. } => format!("start {}/{key}", event.as_str()),
                Signal::Ended { event, key, .. } => format!("end {}/{key}", event.as_str()),
                Signal::DeadLetters { count, .. } => format!("dead {count}"),
            })
            .collect()
    }

    #[test]
    fn a_condition_starts_once_and_ends_once() {
        let limits = AlertingSettings::default();
        let mut c = Conditions::new();
        assert!(c.observe(&healthy(0), &limits).is_empty());
        let mut bad = healthy(1);
        bad.status = "degraded".into();
        bad.status_reasons = vec!["2 dead letters wait for an operator".into()];
        assert_eq!(kinds(&c.observe(&bad, &limits)), ["start status/status"]);
        // Still degraded, other wording: nothing new.
        bad.status_reasons = vec!["3 dead letters wait for an operator".into()];
        assert!(c.observe(&bad, &limits).is_empty());
        // A change of level is told.
        bad.status = "unhealthy".into();
        let s = c.observe(&bad, &limits);
        assert_eq!(kinds(&s), ["start status/status"]);
        assert!(
            matches!(&s[0], Signal::Started { severity: Severity::Critical, summary, .. } if summary.contains("unhealthy"))
        );
        assert!(c.is_active(AlertEvent::Status, "status"));
        assert_eq!(
            kinds(&c.observe(&healthy(3), &limits)),
            ["end status/status"]
        );
        assert!(c.observe(&healthy(4), &limits).is_empty());
    }

    #[test]
    fn unknown_figures_keep_the_state() {
        let limits = AlertingSettings::default();
        let mut c = Conditions::new();
        let mut low = healthy(0);
        low.disk_free_pct = Some(2.0);
        assert_eq!(kinds(&c.observe(&low, &limits)), ["start disk/free"]);
        let mut unknown = healthy(1);
        unknown.disk_free_pct = None;
        assert!(c.observe(&unknown, &limits).is_empty());
        assert_eq!(kinds(&c.observe(&healthy(2), &limits)), ["end disk/free"]);
    }

    #[test]
    fn backlog_and_database_size_use_their_thresholds() {
        let limits = AlertingSettings {
            backlog_age_s: 60,
            db_max_bytes: Some(5000),
            ..AlertingSettings::default()
        };
        let mut c = Conditions::new();
        let mut o = healthy(0);
        o.oldest_queued_age_s = Some(60);
        assert!(c.observe(&o, &limits).is_empty());
        o.oldest_queued_age_s = Some(61);
        o.db_size_bytes = Some(5001);
        assert_eq!(
            kinds(&c.observe(&o, &limits)),
            ["start backlog/backlog", "start disk/db_size"]
        );
        assert_eq!(
            kinds(&c.observe(&healthy(1), &limits)),
            ["end backlog/backlog", "end disk/db_size"]
        );
    }

    #[test]
    fn relay_targets_alert_when_dead_or_failing_long_enough() {
        let limits = AlertingSettings {
            relay_failing_s: 100,
            ..AlertingSettings::default()
        };
        let mut c = Conditions::new();
        let mut o = healthy(1000);
        o.relay_targets = vec![RelayTargetHealth {
            name: "backend".into(),
            dead: false,
            failing_since_ms: Some(950_000),
        }];
        assert!(c.observe(&o, &limits).is_empty(), "failing 50 s");
        o.at_ms = 1_050_000;
        assert_eq!(kinds(&c.observe(&o, &limits)), ["start relay/backend"]);
        o.relay_targets[0].dead = true;
        assert_eq!(kinds(&c.observe(&o, &limits)), ["start relay/backend"]);
        // Removed from the configuration: it ended.
        o.relay_targets.clear();
        assert_eq!(kinds(&c.observe(&o, &limits)), ["end relay/backend"]);
    }

    #[test]
    fn dead_letters_count_what_is_new_since_the_first_observation() {
        let limits = AlertingSettings::default();
        let mut c = Conditions::new();
        let mut o = healthy(0);
        o.dead_total = 4;
        assert!(
            c.observe(&o, &limits).is_empty(),
            "old dead letters are not new"
        );
        o.dead_total = 10;
        o.first_new_dead = Some(DeadSample {
            id: 7,
            error: "invalid JSON".into(),
            source: "orders".into(),
            path: "/api/v2/webhooks/orders".into(),
        });
        let s = c.observe(&o, &limits);
        assert_eq!(kinds(&s), ["dead 6"]);
        assert!(matches!(&s[0], Signal::DeadLetters { first: Some(d), .. } if d.id == 7));
        assert!(c.observe(&o, &limits).is_empty());
    }

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(span(42), "42 s");
        assert_eq!(span(600), "10 min");
        assert_eq!(span(3 * 3600 + 5 * 60), "3 h 5 min");
    }
}
