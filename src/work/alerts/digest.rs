//! Folding per target: each event kind a target listens to is a lane. A lane sends at once
//! when it has sent nothing for `min_interval_s`, else it gathers until the interval is over
//! and sends one digest. A condition that starts and ends while its start is still waiting
//! is dropped whole (nothing was told, nothing needs taking back); dead letters never are.
//! New dead letters also wait one gathering pause first, so a burst is one alert.

use std::collections::{BTreeMap, BTreeSet};

use super::alert::{Alert, Severity};
use super::conditions::{span, DeadSample, Signal};
use crate::settings::{AlertEvent, AlertTarget};

/// One target's lanes.
#[derive(Debug)]
pub struct Outbox {
    interval_ms: i64,
    /// How long new dead letters gather before the first alert of a burst.
    gather_ms: i64,
    lanes: BTreeMap<AlertEvent, Lane>,
}

#[derive(Debug, Default)]
struct Lane {
    last_sent_ms: Option<i64>,
    /// Condition changes not told yet, in arrival order.
    pending: Vec<Signal>,
    /// Conditions whose start this target was told and whose end it was not.
    told_active: BTreeSet<String>,
    dead: Option<DeadFold>,
}

#[derive(Debug)]
struct DeadFold {
    count: u64,
    first: Option<DeadSample>,
    since_ms: i64,
}

impl Outbox {
    pub fn new(target: &AlertTarget, gather_ms: i64) -> Outbox {
        Outbox {
            interval_ms: target.min_interval_s as i64 * 1000,
            gather_ms,
            lanes: target
                .events
                .iter()
                .map(|e| (*e, Lane::default()))
                .collect(),
        }
    }

    /// Takes the signals of one evaluation (those of events this target does not listen to
    /// are ignored), then returns the alerts due at `now_ms`.
    pub fn step(&mut self, signals: &[Signal], now_ms: i64, node: &str) -> Vec<Alert> {
        for signal in signals {
            if let Some(lane) = self.lanes.get_mut(&signal.event()) {
                lane.take(signal, now_ms);
            }
        }
        let mut due = Vec::new();
        for (event, lane) in &mut self.lanes {
            if let Some(alert) = lane.flush(*event, now_ms, self.interval_ms, self.gather_ms, node)
            {
                due.push(alert);
            }
        }
        due
    }

    /// Whether anything waits to be told.
    #[cfg(test)]
    pub fn waiting(&self) -> bool {
        self.lanes
            .values()
            .any(|l| !l.pending.is_empty() || l.dead.is_some())
    }
}

fn key_of(signal: &Signal) -> Option<&str> {
    match signal {
        Signal::Started { key, .. } | Signal::Ended { key, .. } => Some(key),
        Signal::DeadLetters { .. } => None,
    }
}

impl Lane {
    fn take(&mut self, signal: &Signal, now_ms: i64) {
        match signal {
            Signal::DeadLetters { count, first } => {
                let fold = self.dead.get_or_insert(DeadFold {
                    count: 0,
                    first: None,
                    since_ms: now_ms,
                });
                fold.count += count;
                if fold.first.is_none() {
                    fold.first = first.clone();
                }
            }
            Signal::Started { key, .. } => {
                // A newer state of the same condition replaces one not told yet.
                self.pending
                    .retain(|p| !matches!(p, Signal::Started { key: k, .. } if k == key));
                self.pending.push(signal.clone());
            }
            Signal::Ended { key, .. } => {
                // Whatever waits about this condition is overtaken; the end is told only
                // to a target that was told the start.
                self.pending.retain(|p| key_of(p) != Some(key.as_str()));
                if self.told_active.contains(key) {
                    self.pending.push(signal.clone());
                }
            }
        }
    }

    fn flush(
        &mut self,
        event: AlertEvent,
        now_ms: i64,
        interval_ms: i64,
        gather_ms: i64,
        node: &str,
    ) -> Option<Alert> {
        let quiet = self
            .last_sent_ms
            .is_none_or(|last| now_ms - last >= interval_ms);
        if !quiet {
            return None;
        }
        let alert = if let Some(fold) = &self.dead {
            if now_ms - fold.since_ms < gather_ms {
                return None;
            }
            let alert = dead_letter_alert(fold, now_ms, node);
            self.dead = None;
            alert
        } else if self.pending.is_empty() {
            return None;
        } else {
            let items = std::mem::take(&mut self.pending);
            for item in &items {
                match item {
                    Signal::Started { key, .. } => {
                        self.told_active.insert(key.clone());
                    }
                    Signal::Ended { key, .. } => {
                        self.told_active.remove(key);
                    }
                    Signal::DeadLetters { .. } => {}
                }
            }
            condition_alert(event, &items, self.last_sent_ms, now_ms, node)
        };
        self.last_sent_ms = Some(now_ms);
        Some(alert)
    }
}

fn dead_letter_alert(fold: &DeadFold, now_ms: i64, node: &str) -> Alert {
    let n = fold.count;
    let noun = if n == 1 {
        "dead letter"
    } else {
        "dead letters"
    };
    let window = ((now_ms - fold.since_ms).max(0) / 1000) as u64;
    let summary = if window >= 60 {
        format!("{n} new {noun} in the last {}", span(window))
    } else {
        format!("{n} new {noun}")
    };
    let mut details = Vec::new();
    if let Some(first) = &fold.first {
        details.push(format!("First error: {}", first.error));
        details.push(format!(
            "Source: {} at {} (message {})",
            first.source, first.path, first.id
        ));
    }
    details.push("Review them: GET /api/v2/webhooks/queue/dead-letters".into());
    Alert {
        event: AlertEvent::DeadLetter.as_str(),
        severity: Severity::Warning,
        summary,
        details,
        node: node.to_string(),
        at_ms: now_ms,
    }
}

/// One item is told as it is; several become a digest whose severity is that of the
/// conditions still active at its end (info when they all ended).
fn condition_alert(
    event: AlertEvent,
    items: &[Signal],
    last_sent_ms: Option<i64>,
    now_ms: i64,
    node: &str,
) -> Alert {
    let line = |s: &Signal| match s {
        Signal::Started { summary, .. } => summary.clone(),
        Signal::Ended { summary, .. } => format!("resolved: {summary}"),
        Signal::DeadLetters { count, .. } => format!("{count} new dead letters"),
    };
    let severity = items
        .iter()
        .map(|s| match s {
            Signal::Started { severity, .. } => *severity,
            _ => Severity::Info,
        })
        .max()
        .unwrap_or(Severity::Info);
    let (summary, details) = match items {
        [Signal::Started {
            summary, details, ..
        }] => (summary.clone(), details.clone()),
        [one] => (line(one), Vec::new()),
        many => {
            let since = last_sent_ms.map_or(String::new(), |last| {
                format!(
                    " in the last {}",
                    span(((now_ms - last).max(0) / 1000) as u64)
                )
            });
            (
                format!("{} {} changes{since}", many.len(), event.as_str()),
                many.iter().map(line).collect(),
            )
        }
    };
    Alert {
        event: event.as_str(),
        severity,
        summary,
        details,
        node: node.to_string(),
        at_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AlertKind;

    fn target(min_interval_s: u64, events: &[AlertEvent]) -> AlertTarget {
        AlertTarget {
            name: "t".into(),
            kind: AlertKind::Webhook,
            url: "https://example.invalid/x".into(),
            events: events.to_vec(),
            min_interval_s,
        }
    }

    fn started(key: &str, summary: &str) -> Signal {
        Signal::Started {
            event: AlertEvent::Status,
            key: key.into(),
            severity: Severity::Warning,
            summary: summary.into(),
            details: vec!["why".into()],
        }
    }

    fn ended(key: &str, summary: &str) -> Signal {
        Signal::Ended {
            event: AlertEvent::Status,
            key: key.into(),
            summary: summary.into(),
        }
    }

    fn dead(count: u64) -> Signal {
        Signal::DeadLetters {
            count,
            first: Some(DeadSample {
                id: 3,
                error: "invalid JSON at line 1".into(),
                source: "orders".into(),
                path: "/api/v2/webhooks/orders".into(),
            }),
        }
    }

    const S: i64 = 1000;

    #[test]
    fn start_at_once_end_after_the_interval() {
        let mut o = Outbox::new(&target(300, &AlertEvent::ALL), 5 * S);
        let a = o.step(&[started("status", "hookvault is degraded")], 0, "n1");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].summary, "hookvault is degraded");
        assert_eq!(a[0].severity, Severity::Warning);
        assert_eq!((a[0].event, a[0].node.as_str()), ("status", "n1"));
        // The end comes 10 s later: it waits for the interval, then is told once.
        assert!(o
            .step(&[ended("status", "hookvault is degraded")], 10 * S, "n1")
            .is_empty());
        assert!(o.waiting());
        assert!(o.step(&[], 299 * S, "n1").is_empty());
        let a = o.step(&[], 300 * S, "n1");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].summary, "resolved: hookvault is degraded");
        assert_eq!(a[0].severity, Severity::Info);
        assert!(o.step(&[], 900 * S, "n1").is_empty());
        assert!(!o.waiting());
    }

    #[test]
    fn a_condition_that_starts_and_ends_inside_the_interval_is_not_told() {
        let mut o = Outbox::new(&target(300, &AlertEvent::ALL), 5 * S);
        assert_eq!(o.step(&[started("status", "degraded")], 0, "n").len(), 1);
        assert_eq!(o.step(&[], 0, "n").len(), 0);
        // Resolved and started again within the interval: the end and the new start are
        // both waiting; the new start ending too leaves just the end of the first.
        o.step(&[ended("status", "degraded")], 20 * S, "n");
        o.step(&[started("status", "degraded again")], 30 * S, "n");
        o.step(&[ended("status", "degraded again")], 40 * S, "n");
        let a = o.step(&[], 300 * S, "n");
        assert_eq!(a.len(), 1);
        assert!(a[0].summary.starts_with("resolved"), "{a:?}");
        // A blip that was never told stays untold.
        let mut quiet = Outbox::new(&target(300, &AlertEvent::ALL), 5 * S);
        quiet.step(&[started("status", "x")], 0, "n");
        quiet.step(&[started("backlog", "y")], S, "n");
        quiet.step(&[ended("backlog", "y")], 2 * S, "n");
        assert!(quiet.step(&[], 400 * S, "n").is_empty());
        assert!(!quiet.waiting());
    }

    #[test]
    fn repeats_fold_into_one_digest() {
        let mut o = Outbox::new(&target(300, &AlertEvent::ALL), 5 * S);
        o.step(&[started("status", "degraded")], 0, "n");
        o.step(&[ended("status", "degraded")], 60 * S, "n");
        o.step(&[started("status", "unhealthy")], 120 * S, "n");
        let a = o.step(&[], 300 * S, "n");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].summary, "2 status changes in the last 5 min");
        assert_eq!(a[0].details, ["resolved: degraded", "unhealthy"]);
        assert_eq!(a[0].severity, Severity::Warning);
    }

    #[test]
    fn six_dead_letters_in_a_burst_are_one_alert_naming_six() {
        let mut o = Outbox::new(&target(300, &AlertEvent::ALL), 5 * S);
        assert!(o.step(&[dead(2)], 0, "n").is_empty(), "gathering");
        assert!(o.step(&[dead(4)], 2 * S, "n").is_empty());
        let a = o.step(&[], 5 * S, "n");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].summary, "6 new dead letters");
        assert!(a[0].details[0].contains("invalid JSON"), "{a:?}");
        assert_eq!(
            a[0].details[1],
            "Source: orders at /api/v2/webhooks/orders (message 3)"
        );
        // More within the interval: one digest when it is over, naming the window.
        o.step(&[dead(1)], 10 * S, "n");
        o.step(&[dead(2)], 100 * S, "n");
        assert!(o.step(&[], 200 * S, "n").is_empty());
        let a = o.step(&[], 305 * S, "n");
        assert_eq!(a[0].summary, "3 new dead letters in the last 4 min");
        // Dead letters are told even when nothing else is.
        let mut one = Outbox::new(&target(60, &[AlertEvent::DeadLetter]), 5 * S);
        one.step(&[dead(1)], 0, "n");
        assert_eq!(one.step(&[], 5 * S, "n")[0].summary, "1 new dead letter");
    }

    #[test]
    fn events_a_target_did_not_ask_for_are_ignored() {
        let mut o = Outbox::new(&target(60, &[AlertEvent::DeadLetter]), 5 * S);
        assert!(o.step(&[started("status", "degraded")], 0, "n").is_empty());
        assert!(!o.waiting());
    }
}
