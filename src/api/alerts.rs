//! `POST /api/v2/alerts/test`: a test alert to every `[[alerts]]` target, answered with what
//! was queued (each target's delivery id) and what could not be.

use serde_json::json;

use super::call::Call;
use super::response::Reply;
use super::state::AppState;

pub fn test(state: &AppState, _call: &mut Call) -> Reply {
    let Some(alerts) = &state.alerts else {
        return Reply::error(
            409,
            "no_alert_targets",
            "no [[alerts]] target is configured; add one to the config file (docs/operations.md, \"Alerts\")",
        );
    };
    let results = alerts.send_test();
    let (queued, failed): (Vec<_>, Vec<_>) =
        results.into_iter().partition(|r| r.delivery_id.is_some());
    if queued.is_empty() {
        let why = failed
            .first()
            .and_then(|f| f.error.clone())
            .unwrap_or_default();
        return Reply::unavailable(
            "alerts_not_queued",
            &format!("no test alert could be queued: {why}"),
            2,
        );
    }
    Reply::json(200, &json!({"queued": queued, "failed": failed}))
}
