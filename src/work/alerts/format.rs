//! An alert as each kind of target takes it: the request body, its content type and any
//! headers. Every text is cut to the receiver's limits (counted in characters where the
//! receiver counts characters), so a long error never makes the receiver refuse the alert.

use serde_json::{json, Value};

use super::alert::{Alert, Severity};
use crate::base::time::rfc3339;
use crate::settings::AlertKind;

/// Discord: message `content`.
pub const DISCORD_CONTENT_MAX: usize = 2000;
/// Discord: an embed's title, description, field value and footer, and all of an embed's
/// text together.
pub const DISCORD_TITLE_MAX: usize = 256;
pub const DISCORD_DESCRIPTION_MAX: usize = 4096;
pub const DISCORD_FIELD_VALUE_MAX: usize = 1024;
pub const DISCORD_FOOTER_MAX: usize = 2048;
pub const DISCORD_EMBED_TOTAL_MAX: usize = 6000;
/// Slack shows a message's `text` whole up to here (longer ones are cut by Slack).
pub const SLACK_TEXT_MAX: usize = 4000;
/// ntfy turns a longer body into an attachment; its headers carry the title.
pub const NTFY_BODY_MAX_BYTES: usize = 4096;
pub const NTFY_TITLE_MAX: usize = 250;
/// Generic JSON: each text bounded so one alert stays small.
pub const WEBHOOK_TEXT_MAX: usize = 4000;

/// A request ready for the delivery engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn render(kind: AlertKind, alert: &Alert) -> Payload {
    match kind {
        AlertKind::Discord => discord(alert),
        AlertKind::Slack => slack(alert),
        AlertKind::Ntfy => ntfy(alert),
        AlertKind::Webhook => webhook(alert),
    }
}

/// At most `max` characters; a cut text ends with `…` (inside the limit).
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` UTF-8 bytes, cut on a character boundary.
fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn json_payload(value: &Value) -> Payload {
    Payload {
        content_type: "application/json",
        headers: Vec::new(),
        body: serde_json::to_vec(value).expect("JSON values serialize"),
    }
}

fn discord_colour(s: Severity) -> u32 {
    match s {
        Severity::Info => 0x2e_cc_71,
        Severity::Warning => 0xf1_c4_0f,
        Severity::Critical => 0xe7_4c_3c,
    }
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "ℹ️",
        Severity::Warning => "⚠️",
        Severity::Critical => "🚨",
    }
}

fn discord(alert: &Alert) -> Payload {
    let content = clip(
        &format!("{} {}", label(alert.severity), alert.summary),
        DISCORD_CONTENT_MAX,
    );
    let title = clip(&alert.summary, DISCORD_TITLE_MAX);
    let footer = clip(
        &format!("hookvault · {} · {}", alert.node, alert.event),
        DISCORD_FOOTER_MAX,
    );
    // The embed's texts share one budget: title and footer first, the description gets the
    // rest (within its own limit).
    let rest = DISCORD_EMBED_TOTAL_MAX
        - title.chars().count()
        - footer.chars().count()
        - "severity".len()
        - alert.severity.as_str().len();
    let description = clip(&alert.details.join("\n"), rest.min(DISCORD_DESCRIPTION_MAX));
    json_payload(&json!({
        "content": content,
        "embeds": [{
            "title": title,
            "description": description,
            "color": discord_colour(alert.severity),
            "fields": [{"name": "severity", "value": clip(alert.severity.as_str(), DISCORD_FIELD_VALUE_MAX), "inline": true}],
            "footer": {"text": footer},
            "timestamp": rfc3339(alert.at_ms),
        }],
        // An error text quoting "@everyone" must not ping a channel.
        "allowed_mentions": {"parse": []},
    }))
}

fn slack(alert: &Alert) -> Payload {
    let mut text = format!("{} *{}*", label(alert.severity), alert.summary);
    for line in &alert.details {
        text.push('\n');
        text.push_str(line);
    }
    text.push_str(&format!("\n_{} · {}_", alert.node, alert.event));
    json_payload(&json!({ "text": clip(&text, SLACK_TEXT_MAX) }))
}

fn ntfy_priority(s: Severity) -> &'static str {
    match s {
        Severity::Info => "3",
        Severity::Warning => "4",
        Severity::Critical => "5",
    }
}

fn ntfy_tags(alert: &Alert) -> String {
    let mood = match alert.severity {
        Severity::Info => "white_check_mark",
        Severity::Warning => "warning",
        Severity::Critical => "rotating_light",
    };
    format!("{mood},hookvault,{}", alert.event)
}

/// A header value is visible ASCII (ntfy reads UTF-8 titles only RFC 2047-encoded): other
/// characters become `?`, control characters spaces.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_control() => ' ',
            _ => '?',
        })
        .collect()
}

fn ntfy(alert: &Alert) -> Payload {
    let mut body = alert.summary.clone();
    for line in &alert.details {
        body.push('\n');
        body.push_str(line);
    }
    body.push_str(&format!("\n({})", alert.node));
    Payload {
        content_type: "text/plain; charset=utf-8",
        headers: vec![
            (
                "Title",
                header_text(&clip(
                    &format!("hookvault: {}", alert.summary),
                    NTFY_TITLE_MAX,
                )),
            ),
            ("Priority", ntfy_priority(alert.severity).to_string()),
            ("Tags", ntfy_tags(alert)),
        ],
        body: clip_bytes(&body, NTFY_BODY_MAX_BYTES).into_bytes(),
    }
}

fn webhook(alert: &Alert) -> Payload {
    json_payload(&json!({
        "event": alert.event,
        "severity": alert.severity.as_str(),
        "summary": clip(&alert.summary, WEBHOOK_TEXT_MAX),
        "details": alert.details.iter().take(50).map(|d| clip(d, WEBHOOK_TEXT_MAX)).collect::<Vec<_>>(),
        "node": alert.node,
        "at": rfc3339(alert.at_ms),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(summary: &str, details: Vec<String>, severity: Severity) -> Alert {
        Alert {
            event: "dead_letter",
            severity,
            summary: summary.into(),
            details,
            node: "pi:8001".into(),
            at_ms: 1_700_000_000_123,
        }
    }

    fn json(p: &Payload) -> Value {
        assert_eq!(p.content_type, "application/json");
        serde_json::from_slice(&p.body).unwrap()
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn discord_is_an_embed_within_discords_limits() {
        let small = json(&render(
            AlertKind::Discord,
            &alert(
                "6 new dead letters",
                vec!["First error: x".into()],
                Severity::Warning,
            ),
        ));
        assert_eq!(small["content"], "⚠️ 6 new dead letters");
        let e = &small["embeds"][0];
        assert_eq!(e["title"], "6 new dead letters");
        assert_eq!(e["description"], "First error: x");
        assert_eq!(e["color"], 0xf1c40f);
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(small["allowed_mentions"]["parse"], json!([]));

        // Huge texts, multi-byte characters: every limit holds.
        let huge = "é€🚨".repeat(5000);
        let v = json(&render(
            AlertKind::Discord,
            &alert(&huge, vec![huge.clone(), huge.clone()], Severity::Critical),
        ));
        let e = &v["embeds"][0];
        assert!(chars(&v["content"]) <= DISCORD_CONTENT_MAX);
        assert!(chars(&e["title"]) <= DISCORD_TITLE_MAX);
        assert!(chars(&e["description"]) <= DISCORD_DESCRIPTION_MAX);
        assert!(chars(&e["footer"]["text"]) <= DISCORD_FOOTER_MAX);
        let total = chars(&e["title"])
            + chars(&e["description"])
            + chars(&e["footer"]["text"])
            + e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| chars(&f["name"]) + chars(&f["value"]))
                .sum::<usize>();
        assert!(total <= DISCORD_EMBED_TOTAL_MAX, "{total}");
        assert!(e["description"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn slack_is_text() {
        let v = json(&render(
            AlertKind::Slack,
            &alert(
                "hookvault is degraded",
                vec!["2 dead letters".into()],
                Severity::Warning,
            ),
        ));
        assert_eq!(
            v["text"],
            "⚠️ *hookvault is degraded*\n2 dead letters\n_pi:8001 · dead_letter_"
        );
        let long = json(&render(
            AlertKind::Slack,
            &alert(&"x".repeat(10_000), vec![], Severity::Info),
        ));
        assert_eq!(chars(&long["text"]), SLACK_TEXT_MAX);
    }

    #[test]
    fn ntfy_has_title_priority_and_tags() {
        let p = render(
            AlertKind::Ntfy,
            &alert(
                "disk at 3% — low\r\nInjected: x",
                vec!["When full...".into()],
                Severity::Critical,
            ),
        );
        assert_eq!(p.content_type, "text/plain; charset=utf-8");
        let h = |name: &str| {
            p.headers
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        // No line break can reach a header (no header injection), nothing outside ASCII.
        assert_eq!(h("Title"), "hookvault: disk at 3% ? low  Injected: x");
        assert_eq!(h("Priority"), "5");
        assert_eq!(h("Tags"), "rotating_light,hookvault,dead_letter");
        let body = String::from_utf8(p.body).unwrap();
        assert!(
            body.starts_with("disk at 3% — low") && body.ends_with("(pi:8001)"),
            "{body}"
        );
        let big = render(
            AlertKind::Ntfy,
            &alert(&"ü".repeat(5000), vec![], Severity::Info),
        );
        assert!(big.body.len() <= NTFY_BODY_MAX_BYTES);
        assert!(String::from_utf8(big.body).is_ok());
        assert!(big.headers[0].1.len() <= NTFY_TITLE_MAX);
    }

    #[test]
    fn webhook_is_the_documented_json() {
        let v = json(&render(
            AlertKind::Webhook,
            &alert(
                "6 new dead letters",
                vec!["First error: x".into()],
                Severity::Warning,
            ),
        ));
        assert_eq!(
            v,
            json!({
                "event": "dead_letter",
                "severity": "warning",
                "summary": "6 new dead letters",
                "details": ["First error: x"],
                "node": "pi:8001",
                "at": "2023-11-14T22:13:20.123Z",
            })
        );
    }
}
