//! How the service is doing, for probes and dashboards: liveness, readiness, the stats
//! document and Prometheus metrics. The readiness rule itself is [`crate::work::stats::health`], so
//! `/readyz`, the stats `status` and `hookvault_ready` cannot disagree.

use std::collections::BTreeMap;

use serde_json::json;

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::store::SourceCounters;
use crate::work::stats::{health, metrics, sources, StatsSnapshot};

/// `GET /api/v2/webhooks/queue/stats`.
pub fn stats(state: &AppState, _call: &mut Call) -> Reply {
    let mut snapshot = StatsSnapshot::build(
        &state.live,
        state.queue_view(),
        state.reader.storage_health(),
    );
    snapshot.sources = per_source(state);
    let Some(alerts) = &state.alerts else {
        return Reply::json(200, &snapshot);
    };
    // The alerts section sits above the figures (alerts read the stats), so it joins here.
    let mut doc = serde_json::to_value(&snapshot).unwrap_or_default();
    doc["alerts"] = serde_json::to_value(alerts.figures.view()).unwrap_or_default();
    Reply::json(200, &doc)
}

/// Every source's durable totals; empty (and logged) when the store cannot answer, so the
/// rest of the figures are still served.
fn per_source(state: &AppState) -> BTreeMap<String, SourceCounters> {
    match state.reader.source_counters() {
        Ok(stored) => sources::per_source(&state.sources.names(), stored),
        Err(e) => {
            log::warn!("per-source figures unavailable: {e}");
            BTreeMap::new()
        }
    }
}

/// `GET /healthz`: answered while the process is up.
pub fn healthz(_state: &AppState, _call: &mut Call) -> Reply {
    Reply::json(200, &json!({"status": "ok"}))
}

/// `GET /readyz`: `503` with the reasons while [`health::not_ready`] finds any.
pub fn readyz(state: &AppState, _call: &mut Call) -> Reply {
    let reasons = health::not_ready(&state.live);
    if reasons.is_empty() {
        Reply::json(200, &json!({"status": "ready"}))
    } else {
        Reply::json(503, &json!({"status": "not_ready", "reasons": reasons}))
            .with_header("Retry-After", "5")
    }
}

/// `GET /metrics`.
pub fn metrics(state: &AppState, _call: &mut Call) -> Reply {
    let mut text = metrics::render(
        &state.live,
        state.queue_view(),
        state.reader.storage_health(),
    );
    sources::render_metrics(&mut text, &per_source(state));
    Reply::text(200, metrics::CONTENT_TYPE, text)
}
