//! Alerts: the conditions the stats already know (status, dead letters, backlog age, relay
//! targets, disk), told where the operator looks (`[[alerts]]` targets: Discord, Slack, ntfy,
//! a JSON webhook), once when a condition starts and once when it ends, folded into digests
//! within a target's `min_interval_s`.
//!
//! Pure parts, each tested on its own: `conditions` (observation → signals), `digest` (signals
//! → alerts per target), `format` (alert → request per kind). [`Alerter`] joins them; the
//! `alerts` thread (`runner`) feeds it from the stats (`observe`) on the node that leads
//! (`store::Leadership`) and hands what is due to an [`AlertSink`]: the relay's durable
//! deliveries.

pub mod alert;
pub mod conditions;
pub mod digest;
pub mod figures;
pub mod format;
pub mod observe;
pub mod relay_sink;
pub mod runner;
pub mod sink;

pub use alert::Alert;
pub use conditions::{Conditions, Observation};
pub use digest::Outbox;
pub use figures::AlertFigures;
pub use runner::{send_test, AlertInputs, AlertRunner, TestQueued};
pub use sink::AlertSink;

use crate::settings::{AlertTarget, AlertingSettings};

/// What the HTTP side needs of the alerts: the test alert and the stats section.
pub struct AlertService {
    pub targets: Vec<AlertTarget>,
    pub sink: std::sync::Arc<dyn AlertSink>,
    pub figures: std::sync::Arc<AlertFigures>,
    pub node: String,
}

impl AlertService {
    /// A test alert to every target (whichever node leads the checks).
    pub fn send_test(&self) -> Vec<TestQueued> {
        send_test(&self.targets, self.sink.as_ref(), &self.figures, &self.node)
    }
}

/// The conditions and every target's outbox: feed it one observation per check, send what it
/// returns.
#[derive(Debug)]
pub struct Alerter {
    limits: AlertingSettings,
    conditions: Conditions,
    outboxes: Vec<(String, Outbox)>,
    node: String,
}

impl Alerter {
    pub fn new(targets: &[AlertTarget], limits: &AlertingSettings, node: &str) -> Alerter {
        // A burst of dead letters gathers for one check before it is told.
        let gather_ms = limits.check_interval_s as i64 * 1000;
        Alerter {
            limits: limits.clone(),
            conditions: Conditions::new(),
            outboxes: targets
                .iter()
                .map(|t| (t.name.clone(), Outbox::new(t, gather_ms)))
                .collect(),
            node: node.to_string(),
        }
    }

    /// One check: the alerts due now, each with the name of its target.
    pub fn check(&mut self, obs: &Observation) -> Vec<(String, Alert)> {
        let signals = self.conditions.observe(obs, &self.limits);
        let mut due = Vec::new();
        for (name, outbox) in &mut self.outboxes {
            for alert in outbox.step(&signals, obs.at_ms, &self.node) {
                due.push((name.clone(), alert));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{AlertEvent, AlertKind};

    #[test]
    fn each_target_hears_what_it_asked_for() {
        let targets = [
            AlertTarget {
                name: "all".into(),
                kind: AlertKind::Ntfy,
                url: "https://n.invalid/t".into(),
                events: AlertEvent::ALL.to_vec(),
                min_interval_s: 60,
            },
            AlertTarget {
                name: "dead-only".into(),
                kind: AlertKind::Discord,
                url: "https://d.invalid/t".into(),
                events: vec![AlertEvent::DeadLetter],
                min_interval_s: 60,
            },
        ];
        let limits = AlertingSettings::default();
        let mut a = Alerter::new(&targets, &limits, "n1");
        let mut obs = Observation {
            at_ms: 0,
            status: "healthy".into(),
            ..Observation::default()
        };
        assert!(a.check(&obs).is_empty());
        obs.at_ms = 1000;
        obs.status = "degraded".into();
        obs.dead_total = 6;
        let due = a.check(&obs);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0.as_str(), due[0].1.event), ("all", "status"));
        obs.at_ms = 6000;
        let due = a.check(&obs);
        let names: Vec<(&str, &str)> = due
            .iter()
            .map(|(n, a)| (n.as_str(), a.summary.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("all", "6 new dead letters"),
                ("dead-only", "6 new dead letters")
            ]
        );
    }
}
