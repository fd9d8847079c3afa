//! What a secret-bearing URL may show: a relay target as it is logged, listed and counted.

/// Hides a target URL's secret: the token segment of a Discord webhook URL
/// (`/api/webhooks/{id}/{token}`), the query and any user info of other URLs.
pub fn mask_target(url: &str) -> String {
    let (without_query, had_query) = match url.split_once('?') {
        Some((u, _)) => (u, true),
        None => (url, false),
    };
    let (scheme, rest) = match without_query.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, without_query),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_string(),
    };
    let mut segments: Vec<String> = rest.split('/').map(str::to_string).collect();
    if let Some(i) = segments.iter().position(|s| s == "webhooks") {
        if segments.get(i + 2).is_some_and(|t| !t.is_empty()) {
            segments[i + 2] = "***".into();
            segments.truncate(i + 3);
        }
    } else if let Some(last) = segments.iter().skip(1).rposition(|s| !s.is_empty()) {
        // Other URLs keep their secret last too: a Slack webhook's, an ntfy topic, a
        // Zapier or IFTTT key. The segments before it stay, so an operator still tells
        // targets apart.
        segments[last + 1] = "***".into();
    }
    let mut out = segments.join("/");
    if let Some(s) = scheme {
        out = format!("{s}://{out}");
    }
    if had_query {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_target;

    #[test]
    fn tokens_never_survive_masking() {
        assert_eq!(
            mask_target("https://discord.com/api/webhooks/123/SeCrEt?thread_id=5"),
            "https://discord.com/api/webhooks/123/***?***"
        );
        assert_eq!(
            mask_target("http://127.0.0.1:9/api/v10/webhooks/1/tok/slack"),
            "http://127.0.0.1:9/api/v10/webhooks/1/***"
        );
        assert_eq!(
            mask_target("https://user:pw@host/x"),
            "https://***@host/***"
        );
        assert_eq!(mask_target("https://h/hook"), "https://h/***");
        assert_eq!(
            mask_target("https://hooks.slack.com/services/T0/B0/SeCrEt"),
            "https://hooks.slack.com/services/T0/B0/***"
        );
        assert_eq!(
            mask_target("https://ntfy.sh/my-topic/"),
            "https://ntfy.sh/***/"
        );
        assert_eq!(mask_target("https://h"), "https://h");
    }
}
