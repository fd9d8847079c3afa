//! One request for one delivery (ureq, blocking, rustls with the CA roots compiled in) and
//! what its answer means: where the delivery goes next and how the target is paced.

use std::time::{Duration, Instant};

use super::pacing::{self, Pace};
use crate::base::mask::mask_target;
use crate::store::{AttemptResult, DeliveryNext, DeliveryTicket, TargetKind};
use crate::work::queue::backoff::Backoff;

/// Bytes of a target's answer kept (the error of a refused delivery, `?wait=true`'s answer).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Bytes of an answer written into a delivery's error.
const MAX_ERROR_CHARS: usize = 500;

/// Sends deliveries. One per relay worker thread; ureq's agent keeps connections alive.
pub struct Sender {
    agent: ureq::Agent,
    max_attempts: u32,
    backoff: Backoff,
}

/// A target's answer (or the failure to get one).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub latency: Duration,
    /// The transport failure (connection refused, timeout...), token removed.
    pub error: Option<String>,
    pub pace: Pace,
}

/// The `User-Agent` Discord asks bots to send: `DiscordBot (<url>, <version>)`.
pub fn user_agent() -> String {
    format!(
        "DiscordBot (https://github.com/hookvault/hookvault, {})",
        env!("CARGO_PKG_VERSION")
    )
}

impl Sender {
    pub fn new(timeout: Duration, max_attempts: u32, backoff: Backoff) -> Sender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(user_agent())
            .build()
            .into();
        Sender {
            agent,
            max_attempts,
            backoff,
        }
    }

    /// Makes the request: the body bytes and content type as stored, the extra headers.
    pub fn send(&self, t: &DeliveryTicket) -> Answer {
        let started = Instant::now();
        let mut request = self.agent.post(&t.target);
        if let Some(ct) = &t.content_type {
            request = request.header("Content-Type", ct);
        }
        let extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&t.headers_json).unwrap_or_default();
        for (name, value) in &extra {
            if let Some(value) = value.as_str() {
                request = request.header(name.as_str(), value);
            }
        }
        match request.send(&t.body[..]) {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let content_type = header("content-type");
                let body = response
                    .into_body()
                    .with_config()
                    .limit(MAX_ANSWER_BYTES)
                    .read_to_vec()
                    .unwrap_or_default();
                let pace = pacing::read(status, &header, &body);
                Answer {
                    status: Some(status),
                    content_type,
                    body,
                    latency: started.elapsed(),
                    error: None,
                    pace,
                }
            }
            Err(e) => Answer {
                status: None,
                content_type: None,
                body: Vec::new(),
                latency: started.elapsed(),
                error: Some(scrub(&e.to_string(), &t.target)),
                pace: Pace::default(),
            },
        }
    }

    /// Where the delivery goes after `answer`, and the attempt as recorded.
    pub fn judge(
        &self,
        t: &DeliveryTicket,
        answer: &Answer,
        now_ms: i64,
    ) -> (DeliveryNext, AttemptResult) {
        let text = || {
            let s = String::from_utf8_lossy(&answer.body);
            scrub(
                &s.chars().take(MAX_ERROR_CHARS).collect::<String>(),
                &t.target,
            )
        };
        let retry = |error: String| {
            if t.attempt >= self.max_attempts {
                (DeliveryNext::Dead, Some(error))
            } else {
                let wait = self.backoff.with_jitter(t.attempt);
                (
                    DeliveryNext::RetryAt(now_ms + wait.as_millis() as i64),
                    Some(error),
                )
            }
        };
        let (next, error) = match answer.status {
            Some(s) if (200..300).contains(&s) => (DeliveryNext::Delivered, None),
            Some(429) => {
                // Waited out by the scheduler's pacing; not a failure of the delivery, so it
                // uses none of its attempts and is due again as soon as the target is.
                let wait = answer.pace.wait.or(answer.pace.global).unwrap_or_default();
                (
                    DeliveryNext::RateLimited(now_ms + wait.as_millis() as i64),
                    Some(format!("429 rate limited: {}", text())),
                )
            }
            Some(s) if s >= 500 => retry(format!("{s}: {}", text())),
            Some(s) if t.kind == TargetKind::Discord && target_gone(s, &answer.body) => (
                DeliveryNext::TargetDead {
                    reason: format!("{s}: {}", text()),
                },
                Some(format!("{s}: {}", text())),
            ),
            Some(s) => (DeliveryNext::Dead, Some(format!("{s}: {}", text()))),
            None => retry(answer.error.clone().unwrap_or_else(|| "no answer".into())),
        };
        let result = AttemptResult {
            status: answer.status,
            latency_ms: answer.latency.as_millis() as i64,
            error,
        };
        (next, result)
    }
}

/// Discord's answer for a webhook that no longer exists (`404`, code 10015 Unknown Webhook)
/// or whose token is wrong (`401`, code 50027 Invalid Webhook Token): nothing sent to it can
/// ever succeed, and Discord bans addresses that keep sending invalid requests.
pub fn target_gone(status: u16, body: &[u8]) -> bool {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(serde_json::Value::as_i64));
    matches!((status, code), (404, Some(10015)) | (401, Some(50027)))
}

/// `text` with the target's secret replaced by its masked form.
pub fn scrub(text: &str, target: &str) -> String {
    let masked = mask_target(target);
    let mut out = text.replace(target, &masked);
    // The token alone (an error that quotes a path, not the URL).
    let path = target.split('?').next().unwrap_or(target);
    if let Some(token) = path.rsplit('/').next().filter(|t| t.len() >= 8) {
        if path.contains("/webhooks/") {
            out = out.replace(token, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_webhook_and_invalid_token_kill_a_target() {
        assert!(target_gone(
            404,
            br#"{"message":"Unknown Webhook","code":10015}"#
        ));
        assert!(target_gone(
            401,
            br#"{"message":"Invalid Webhook Token","code":50027}"#
        ));
        assert!(!target_gone(404, b"not found"));
        assert!(!target_gone(400, br#"{"code":50006}"#));
    }

    #[test]
    fn errors_never_carry_the_token() {
        let target = "http://127.0.0.1:1/api/webhooks/42/SECRETtokenVALUE";
        let e = scrub(&format!("connection refused: {target}"), target);
        assert!(!e.contains("SECRETtokenVALUE"), "{e}");
        let e = scrub("bad path /api/webhooks/42/SECRETtokenVALUE", target);
        assert!(!e.contains("SECRETtokenVALUE"), "{e}");
    }
}
