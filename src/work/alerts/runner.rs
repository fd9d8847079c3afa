//! The `alerts` thread: every `alerting.check_interval_s`, when this node leads the alerts
//! (one node of a cluster does), one check: observe, fold, hand what is due to the sink. A
//! target that cannot take an alert is reported in the stats and the log, never by an alert.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::alert::Alert;
use super::figures::AlertFigures;
use super::format::render;
use super::observe::{observation, DeadLetterCursor, RelayTargetFigures, RelayWatch};
use super::sink::AlertSink;
use super::Alerter;
use crate::base::lifecycle::{Background, Stop};
use crate::base::time::now_ms;
use crate::settings::{AlertTarget, AlertingSettings};
use crate::store::{Leadership, ReadStore};
use crate::work::stats::StatsSnapshot;

/// Everything the thread reads and where it sends.
pub struct AlertInputs {
    pub targets: Vec<AlertTarget>,
    pub limits: AlertingSettings,
    pub node: String,
    pub snapshot: Box<dyn Fn() -> StatsSnapshot + Send>,
    /// The durable count of messages that went to dead letters.
    pub dead_total: Box<dyn Fn() -> u64 + Send>,
    /// The relay's per-target figures.
    pub relay_figures: Box<dyn Fn() -> Vec<RelayTargetFigures> + Send>,
    /// The alert targets as the relay labels them: left out of the `relay` condition (an
    /// alert target never alerts about itself).
    pub alert_labels: Vec<String>,
    pub reader: Arc<dyn ReadStore>,
    pub leadership: Box<dyn Leadership>,
    pub sink: Arc<dyn AlertSink>,
    pub figures: Arc<AlertFigures>,
}

/// The alerts thread.
pub struct AlertRunner;

impl AlertRunner {
    /// Starts the thread (none when no target is configured); it ends when the component
    /// stops.
    pub fn start(inputs: AlertInputs) -> std::io::Result<Background> {
        let mut runner = Background::new("alerts");
        if !inputs.targets.is_empty() {
            runner.spawn("alerts", move |stop| run(inputs, stop))?;
        }
        Ok(runner)
    }
}

/// The checking state of the leading node; a node that loses the lead drops it, and one
/// that gains it starts afresh (conditions true then are told as they start).
struct Leading {
    alerter: Alerter,
    dead: DeadLetterCursor,
    relay: RelayWatch,
}

fn run(mut inputs: AlertInputs, stop: Stop) {
    let every = Duration::from_secs(inputs.limits.check_interval_s);
    let mut leading: Option<Leading> = None;
    loop {
        target_states(&inputs);
        let leads = inputs.leadership.lead();
        inputs.figures.set_leader(leads);
        if !leads {
            leading = None;
        } else {
            let state = leading.get_or_insert_with(|| Leading {
                alerter: Alerter::new(&inputs.targets, &inputs.limits, &inputs.node),
                dead: DeadLetterCursor::default(),
                relay: RelayWatch::new(inputs.alert_labels.clone()),
            });
            check(&inputs, state);
        }
        if stop.sleep(every) {
            return;
        }
    }
}

/// Each alert target's state in the stats, from the relay's figures (on every node).
fn target_states(inputs: &AlertInputs) {
    let relay = (inputs.relay_figures)();
    for (target, label) in inputs.targets.iter().zip(&inputs.alert_labels) {
        let state = relay
            .iter()
            .find(|f| &f.label == label)
            .map_or("ok", RelayTargetFigures::state);
        inputs.figures.delivery_state(&target.name, state);
    }
}

fn check(inputs: &AlertInputs, state: &mut Leading) {
    let stats = (inputs.snapshot)();
    let first_new = state.dead.first_new(inputs.reader.as_ref());
    let now = now_ms();
    let relay = state.relay.health(&(inputs.relay_figures)(), now);
    let obs = observation(&stats, (inputs.dead_total)(), first_new, relay, now);
    for (name, alert) in state.alerter.check(&obs) {
        if let Some(target) = inputs.targets.iter().find(|t| t.name == name) {
            // The outcome is in the stats and the log already: nothing else to do with it.
            let _ = send(inputs.sink.as_ref(), &inputs.figures, target, &alert);
        }
    }
}

/// Hands one alert to the sink; the outcome goes to the stats and the log only.
fn send(
    sink: &dyn AlertSink,
    figures: &AlertFigures,
    target: &AlertTarget,
    alert: &Alert,
) -> Result<i64, String> {
    match sink.enqueue(target, render(target.kind, alert)) {
        Ok(id) => {
            log::info!(
                "alert {} ({}) queued for target {} as delivery {id}: {}",
                alert.event,
                alert.severity.as_str(),
                target.name,
                alert.summary
            );
            figures.queued(&target.name, alert, id);
            Ok(id)
        }
        Err(e) => {
            log::warn!(
                "alert {} for target {} could not be queued: {e}",
                alert.event,
                target.name
            );
            figures.failed(&target.name, &e);
            Err(e)
        }
    }
}

/// What `POST /api/v2/alerts/test` answers per target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestQueued {
    pub target: String,
    pub kind: crate::settings::AlertKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A test alert to every target, whichever node leads.
pub fn send_test(
    targets: &[AlertTarget],
    sink: &dyn AlertSink,
    figures: &AlertFigures,
    node: &str,
) -> Vec<TestQueued> {
    let alert = Alert::test(node, now_ms());
    targets
        .iter()
        .map(|t| {
            let sent = send(sink, figures, t, &alert);
            TestQueued {
                target: t.name.clone(),
                kind: t.kind,
                delivery_id: sent.as_ref().ok().copied(),
                error: sent.err(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{AlertEvent, AlertKind};
    use crate::work::alerts::format::Payload;
    use std::sync::Mutex;

    /// Records what would be made durable; refuses the target named `broken`.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, Payload)>>);

    impl AlertSink for Recorder {
        fn enqueue(&self, target: &AlertTarget, payload: Payload) -> Result<i64, String> {
            if target.name == "broken" {
                return Err("the database refused the write".into());
            }
            let mut v = self.0.lock().unwrap();
            v.push((target.name.clone(), payload));
            Ok(v.len() as i64)
        }
    }

    fn target(name: &str, kind: AlertKind) -> AlertTarget {
        AlertTarget {
            name: name.into(),
            kind,
            url: format!("https://example.invalid/{name}-s3cret"),
            events: AlertEvent::ALL.to_vec(),
            min_interval_s: 60,
        }
    }

    #[test]
    fn a_test_alert_goes_to_every_target_and_failures_show_in_stats_only() {
        let targets = [
            target("ops", AlertKind::Discord),
            target("phone", AlertKind::Ntfy),
            target("broken", AlertKind::Slack),
        ];
        let sink = Recorder::default();
        let figures = AlertFigures::new(&targets);
        let answer = send_test(&targets, &sink, &figures, "n1");
        assert_eq!(answer.len(), 3);
        assert_eq!(answer[0].delivery_id, Some(1));
        assert_eq!(answer[1].delivery_id, Some(2));
        assert!(answer[2].delivery_id.is_none() && answer[2].error.is_some());
        let sent = sink.0.lock().unwrap();
        // One request per working target, and nothing about the broken one (no alert loop).
        assert_eq!(sent.len(), 2);
        assert!(String::from_utf8_lossy(&sent[0].1.body).contains("test alert"));
        let view = figures.view();
        assert_eq!(view.targets["ops"].alerts_queued, 1);
        assert_eq!(
            view.targets["ops"].last_alert.as_ref().unwrap().event,
            "test"
        );
        assert_eq!(view.targets["broken"].state, "enqueue_failed");
        let shown = serde_json::to_string(&view).unwrap();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("https://example.invalid/********"),
            "{shown}"
        );
    }
}
