//! `GET /dashboard`: one self-contained page (no external loads), the WebSocket port filled
//! in when the stream is on, and a script that at least parses.

use std::process::Command;

use crate::harness::{Hookvault, InProcess};

fn page(s: &InProcess) -> String {
    let a = s.http.get("/dashboard");
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        a.headers
    );
    a.text
}

/// Every `name=` attribute value and CSS `url(...)` in the page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=", "href=", "action=", "url(", "@import"] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let value: String = rest
                .trim_start_matches(['"', '\'', ' '])
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ')' | ' ' | '>'))
                .collect();
            out.push(value);
        }
    }
    out
}

#[test]
fn dashboard_is_self_contained_and_knows_the_websocket_port() {
    let s = Hookvault::new().websocket().start();
    let port = s.service().ws_addr().unwrap().port();
    let html = page(&s);

    assert!(!html.contains("{{"), "a placeholder is left");
    assert!(
        html.contains(&format!(r#"data-ws-port="{port}""#)),
        "the WebSocket port {port} is not in the page"
    );
    // No external loads of any kind: no absolute URLs at all, and every reference is local.
    assert!(!html.contains("http://") && !html.contains("https://"));
    for r in references(&html) {
        assert!(
            r.starts_with('/') && !r.starts_with("//") || r.starts_with("data:") || r.is_empty(),
            "external or odd reference {r:?}"
        );
    }
    for link in ["/docs", "/metrics"] {
        assert!(
            html.contains(&format!(r#"href="{link}""#)),
            "no link to {link}"
        );
    }
    // One small page (a Pi serves it; a phone loads it): 25 KiB since the sources card, 27
    // since the relay targets card.
    assert!(html.len() < 27 * 1024, "{} bytes", html.len());

    // The API endpoints the page uses exist (on loopback without a token).
    for path in [
        "/api/v2/webhooks/queue/stats",
        "/api/v2/orders?limit=10",
        "/api/v2/webhooks/queue/dead-letters?limit=20",
    ] {
        assert!(html.contains(path.split('?').next().unwrap()), "{path}");
        assert_eq!(s.http.get(path).status, 200, "{path}");
    }
}

#[test]
fn dashboard_with_the_websocket_off_says_so() {
    let s = Hookvault::new()
        .settings(|c| c.websocket.listen = "off".into())
        .start();
    let html = page(&s);
    assert!(!html.contains("{{"), "a placeholder is left");
    assert!(html.contains(r#"data-ws-port="""#));
    assert!(html.contains("live event stream is off"));
}

#[test]
fn dashboard_is_open_even_with_an_admin_token() {
    let s = Hookvault::new()
        .settings(|c| c.server.admin_token = Some("s3cret".into()))
        .start();
    page(&s);
    assert_eq!(s.http.get("/api/v2/webhooks/queue/stats").status, 401);
}

/// The inline script parses (`node --check`). Skipped with a reason when node is missing,
/// except under `CI=true`.
#[test]
fn dashboard_script_parses() {
    if !crate::harness::require(
        &["node"],
        "the dashboard script is syntax-checked with node",
    ) {
        return;
    }
    let html = hookvault::testing::api::render_dashboard(Some("127.0.0.1:8002".parse().unwrap()));
    let start = html.find("<script>").expect("an inline script") + "<script>".len();
    let end = html[start..].find("</script>").expect("script end") + start;
    assert_eq!(html.matches("<script").count(), 1, "one inline script only");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.js");
    std::fs::write(&file, &html[start..end]).unwrap();
    let out = Command::new("node")
        .arg("--check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node --check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
