//! `POST /api/webhooks/{id}/{token}` (and `/api/v9/...`, `/api/v10/...`): Discord's webhook
//! path, so a bot only changes the host. The webhook is stored like any ingest, with a
//! delivery to `{relay.discord_base}/api/webhooks/{id}/{token}` in the same commit, and
//! answered as Discord answers (`204`), or with Discord's own answer for `?wait=true`.
//! Only ids listed in `relay.discord_webhook_ids` are taken: never an open relay.

use std::time::Duration;

use super::call::Call;
use super::intake;
use super::response::Reply;
use super::state::AppState;
use crate::store::{NewDelivery, TargetKind};

pub fn execute(state: &AppState, call: &mut Call) -> Reply {
    let (id, token) = match (call.params.first(), call.params.get(1)) {
        (Some(id), Some(token)) => (id.clone(), token.clone()),
        _ => {
            return Reply::error(
                404,
                "not_found",
                "a Discord webhook path needs an id and a token",
            )
        }
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Reply::error(
            400,
            "bad_request",
            "a Discord webhook id is a number (the path is /api/webhooks/{id}/{token})",
        );
    }
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Reply::error(
            400,
            "bad_request",
            "a Discord webhook token is letters, digits, '-' and '_'",
        );
    }
    let allowed = &state.settings.relay.discord_webhook_ids;
    if !allowed.iter().any(|a| a == "*" || *a == id) {
        return Reply::error(
            403,
            "relay_not_allowed",
            &format!(
                "webhook id {id} is not in relay.discord_webhook_ids; nothing was stored or relayed"
            ),
        );
    }
    let wait = call.query("wait") == Some("true");
    let target = target_url(state, &id, &token, call.query("thread_id"), wait);
    let delivery = NewDelivery {
        target,
        kind: TargetKind::Discord,
        content_type: call.header("Content-Type").map(str::to_string),
        headers_json: "{}".into(),
        body: None,
    };
    let stored_path = format!("/api/webhooks/{id}/***");
    let (message_id, duplicate) =
        match intake::receive_relayed(state, call, "discord", stored_path, vec![delivery]) {
            Ok(stored) => stored,
            Err(reply) => return reply,
        };
    if !wait {
        return Reply::text(204, "application/json", Vec::new());
    }
    let waited = (!duplicate)
        .then(|| {
            state.relay.wait_for(
                message_id,
                Duration::from_millis(state.settings.relay.wait_ms),
            )
        })
        .flatten();
    match waited {
        Some(answer) => {
            let status = answer.status;
            let json = answer
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json"));
            let content_type = if json {
                "application/json"
            } else {
                "text/plain"
            };
            Reply::text(status, content_type, answer.body)
        }
        None => Reply::json(
            202,
            &serde_json::json!({"id": message_id, "status": "queued"}),
        ),
    }
}

/// Where Discord takes this webhook: the base, the id and token, and the query Discord reads
/// (`thread_id`, and `wait=true` when the sender waits for Discord's answer).
fn target_url(
    state: &AppState,
    id: &str,
    token: &str,
    thread_id: Option<&str>,
    wait: bool,
) -> String {
    let base = state.settings.relay.discord_base.trim_end_matches('/');
    let mut query = Vec::new();
    if wait {
        query.push("wait=true".to_string());
    }
    if let Some(t) = thread_id.filter(|t| t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty()) {
        query.push(format!("thread_id={t}"));
    }
    let mut url = format!("{base}/api/webhooks/{id}/{token}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}
