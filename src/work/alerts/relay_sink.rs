//! [`AlertSink`] over the relay: an alert is a delivery of its own, durable once queued, sent
//! in order, paced and retried like every relay.

use super::format::Payload;
use super::observe::RelayTargetFigures;
use super::sink::AlertSink;
use crate::base::mask::mask_target;
use crate::settings::{AlertKind, AlertTarget};
use crate::store::TargetKind;
use crate::work::relay::{Outgoing, Relay};
use crate::work::stats::LiveStats;

pub struct RelaySink(pub Relay);

impl AlertSink for RelaySink {
    fn enqueue(&self, target: &AlertTarget, payload: Payload) -> Result<i64, String> {
        let kind = match target.kind {
            // Discord's pacing headers, its error codes and its User-Agent.
            AlertKind::Discord => TargetKind::Discord,
            AlertKind::Slack | AlertKind::Ntfy | AlertKind::Webhook => TargetKind::Http,
        };
        self.0
            .enqueue(Outgoing {
                target: target.url.clone(),
                kind,
                body: payload.body,
                content_type: Some(payload.content_type.to_string()),
                headers: payload
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            })
            .map_err(|e| e.to_string())
    }
}

/// How the relay labels an alert target (to leave it out of the `relay` condition).
pub fn relay_label(target: &AlertTarget) -> String {
    mask_target(&target.url)
}

/// The relay's per-target figures, as the `relay` condition reads them.
pub fn relay_figures(live: &LiveStats) -> Vec<RelayTargetFigures> {
    live.relay
        .snapshot()
        .targets
        .into_iter()
        .map(|(label, t)| RelayTargetFigures {
            label,
            pending: t.pending,
            paused: t.paused_until.is_some(),
            last_status: t.last_status,
            dead: t.dead,
        })
        .collect()
}
