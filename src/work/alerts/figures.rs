//! What the stats show about alerts: whether this node evaluates them, and per target its
//! last alert and the state of sending to it. Kept apart from the targets' URLs (masked).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use serde::Serialize;

use super::alert::Alert;
use crate::base::time::rfc3339;
use crate::settings::{mask_alert_url, AlertKind, AlertTarget};

#[derive(Debug, Default)]
pub struct AlertFigures {
    leader: AtomicBool,
    targets: Mutex<BTreeMap<String, TargetView>>,
}

/// One target in the stats' `alerts.targets`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetView {
    pub kind: AlertKind,
    /// Scheme and host only.
    pub url: String,
    pub events: Vec<&'static str>,
    /// `ok`, `failing` (its alerts wait in the relay, retried), `dead` (the relay gave up on
    /// it), or `enqueue_failed` (the last alert could not be made durable).
    pub state: String,
    pub alerts_queued: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_alert: Option<LastAlert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastAlert {
    pub event: &'static str,
    pub severity: &'static str,
    pub summary: String,
    pub at: String,
    /// The delivery carrying it (`GET /api/v2/deliveries`).
    pub delivery_id: i64,
}

/// The stats' `alerts` section.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertsView {
    /// Whether this node evaluates and sends the alerts (one node of a cluster does).
    pub leader: bool,
    pub targets: BTreeMap<String, TargetView>,
}

impl AlertFigures {
    pub fn new(targets: &[AlertTarget]) -> AlertFigures {
        let views = targets
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    TargetView {
                        kind: t.kind,
                        url: mask_alert_url(&t.url),
                        events: t.events.iter().map(|e| e.as_str()).collect(),
                        state: "ok".into(),
                        alerts_queued: 0,
                        last_alert: None,
                        last_error: None,
                    },
                )
            })
            .collect();
        AlertFigures {
            leader: AtomicBool::new(false),
            targets: Mutex::new(views),
        }
    }

    pub fn set_leader(&self, leads: bool) {
        self.leader.store(leads, Relaxed);
    }

    pub fn queued(&self, target: &str, alert: &Alert, delivery_id: i64) {
        self.with(target, |v| {
            v.alerts_queued += 1;
            v.state = "ok".into();
            v.last_error = None;
            v.last_alert = Some(LastAlert {
                event: alert.event,
                severity: alert.severity.as_str(),
                summary: alert.summary.clone(),
                at: rfc3339(alert.at_ms),
                delivery_id,
            });
        });
    }

    pub fn failed(&self, target: &str, error: &str) {
        self.with(target, |v| {
            v.state = "enqueue_failed".into();
            v.last_error = Some(error.to_string());
        });
    }

    /// The relay's view of a target's deliveries (`ok`, `failing`, `dead`); a change is
    /// logged (the one place a failing alert target is told: never by an alert).
    pub fn delivery_state(&self, target: &str, state: &str) {
        self.with(target, |v| {
            if v.state == "enqueue_failed" || v.state == state {
                return;
            }
            match state {
                "ok" => log::info!("alert target {target} takes its alerts again"),
                "dead" => log::warn!(
                    "alert target {target} is dead (it refused or is gone): its alerts are dead \
                     deliveries until an operator retries them (POST /api/v2/deliveries/retry-failed)"
                ),
                _ => log::warn!(
                    "alert target {target} is failing: its alerts wait in the relay and are retried"
                ),
            }
            v.state = state.to_string();
        });
    }

    fn with(&self, target: &str, f: impl FnOnce(&mut TargetView)) {
        if let Ok(mut t) = self.targets.lock() {
            if let Some(v) = t.get_mut(target) {
                f(v);
            }
        }
    }

    pub fn view(&self) -> AlertsView {
        AlertsView {
            leader: self.leader.load(Relaxed),
            targets: self.targets.lock().map(|t| t.clone()).unwrap_or_default(),
        }
    }
}
