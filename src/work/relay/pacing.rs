//! What a target's answer says about when to send it the next request: Discord's rate-limit
//! headers (`X-RateLimit-Remaining`, `-Reset-After`, `-Bucket`, `-Global`), and a `429`'s
//! wait (`retry_after` in its JSON body, float seconds, or the `Retry-After` header). Pure:
//! the scheduler applies it.

use std::time::Duration;

/// The pacing an answer asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pace {
    /// The rate-limit bucket the target reported (shared by every webhook reporting it).
    pub bucket: Option<String>,
    /// No request to this target (its bucket) for this long.
    pub wait: Option<Duration>,
    /// No request to any Discord target for this long (`X-RateLimit-Global`).
    pub global: Option<Duration>,
    /// The answer was a `429`.
    pub rate_limited: bool,
}

/// The longest wait a header may impose: a bogus or hostile value cannot park a target for
/// days.
const MAX_WAIT: Duration = Duration::from_secs(3600);

fn seconds(text: &str) -> Option<Duration> {
    let s: f64 = text.trim().parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s).min(MAX_WAIT))
}

/// Reads an answer: its status, a header lookup (case-insensitive names) and its body.
pub fn read(status: u16, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Pace {
    let mut pace = Pace {
        bucket: header("x-ratelimit-bucket").filter(|b| !b.is_empty()),
        ..Pace::default()
    };
    let remaining = header("x-ratelimit-remaining").and_then(|r| r.trim().parse::<u64>().ok());
    let reset_after = header("x-ratelimit-reset-after").and_then(|r| seconds(&r));
    if remaining == Some(0) {
        pace.wait = reset_after;
    }
    if status == 429 {
        pace.rate_limited = true;
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let from_body = json
            .as_ref()
            .and_then(|v| v.get("retry_after"))
            .and_then(serde_json::Value::as_f64)
            .and_then(|s| seconds(&s.to_string()));
        let wait = from_body
            .or_else(|| header("retry-after").and_then(|r| seconds(&r)))
            .or(reset_after)
            .unwrap_or(Duration::from_secs(1));
        let global = header("x-ratelimit-global").is_some_and(|g| g.eq_ignore_ascii_case("true"))
            || json
                .as_ref()
                .and_then(|v| v.get("global"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
        if global {
            pace.global = Some(wait);
        } else {
            pace.wait = Some(pace.wait.map_or(wait, |w| w.max(wait)));
        }
    }
    pace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn an_exhausted_bucket_waits_for_its_reset() {
        let h = headers(&[
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset-After", "1.5"),
            ("X-RateLimit-Bucket", "abc"),
        ]);
        let p = read(204, &h, b"");
        assert_eq!(p.bucket.as_deref(), Some("abc"));
        assert_eq!(p.wait, Some(Duration::from_millis(1500)));
        assert!(!p.rate_limited);
        let h = headers(&[
            ("X-RateLimit-Remaining", "3"),
            ("X-RateLimit-Reset-After", "2"),
        ]);
        assert_eq!(read(204, &h, b"").wait, None);
    }

    #[test]
    fn a_429_waits_retry_after_from_the_body_then_the_header() {
        let h = headers(&[("Retry-After", "7")]);
        let p = read(
            429,
            &h,
            br#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#,
        );
        assert_eq!(p.wait, Some(Duration::from_millis(250)));
        assert!(p.rate_limited);
        assert_eq!(
            read(429, &h, b"not json").wait,
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn a_global_429_pauses_everything() {
        let h = headers(&[("X-RateLimit-Global", "true")]);
        let p = read(429, &h, br#"{"retry_after":2.0,"global":true}"#);
        assert_eq!(p.global, Some(Duration::from_secs(2)));
        assert_eq!(p.wait, None);
    }

    #[test]
    fn absurd_waits_are_bounded() {
        let h = headers(&[]);
        let p = read(429, &h, br#"{"retry_after":1e12}"#);
        assert_eq!(p.wait, Some(MAX_WAIT));
        assert_eq!(
            read(429, &h, br#"{"retry_after":-3}"#).wait,
            Some(Duration::from_secs(1))
        );
    }
}
