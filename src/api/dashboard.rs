//! `GET /dashboard`: a small self-contained operator page (inline CSS and JS, no external
//! loads). It holds no data itself: it reads the admin API with `fetch` and the live events
//! from the WebSocket, whose port is filled in when the page is served.

use std::sync::OnceLock;

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::work::orders::price::minor_exponent;

const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// Where the page may load from and connect to: itself and a WebSocket (on another port,
/// which `'self'` does not cover). Nothing else, so a value smuggled into an order can never
/// make the browser load anything.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub fn page(state: &AppState, _call: &mut Call) -> Reply {
    Reply::text(200, "text/html; charset=utf-8", render(state.ws_addr))
        .with_header("Content-Security-Policy", CSP)
        .with_header("Cache-Control", "no-store")
}

/// The page with the WebSocket port filled in (empty when the WebSocket is off). Only a
/// number from our own configuration and our own currency table go into the HTML.
pub fn render(ws_addr: Option<std::net::SocketAddr>) -> String {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| DASHBOARD_HTML.replace("{{MINOR_UNITS}}", &minor_units()));
    let port = ws_addr.map(|a| a.port().to_string()).unwrap_or_default();
    page.replace("{{WS_PORT}}", &port)
}

/// `{"JPY":0,"KWD":3,...}`: the currencies whose minor unit is not 1/100, exactly as the order
/// parser counts `amount_cents` (the browser's own table differs, e.g. for HUF and IDR).
fn minor_units() -> String {
    let mut map = serde_json::Map::new();
    let letters = b'A'..=b'Z';
    for a in letters.clone() {
        for b in letters.clone() {
            for c in letters.clone() {
                let code = String::from_utf8(vec![a, b, c]).expect("ASCII");
                let exp = minor_exponent(&code);
                if exp != 2 {
                    map.insert(code, exp.into());
                }
            }
        }
    }
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_filled_in_or_left_empty() {
        let on = render(Some("127.0.0.1:8002".parse().unwrap()));
        assert!(on.contains(r#"data-ws-port="8002""#));
        assert!(!on.contains("{{"));
        let off = render(None);
        assert!(off.contains(r#"data-ws-port="""#));
        assert!(!off.contains("{{"));
    }

    #[test]
    fn minor_units_follow_the_order_parser() {
        let m: serde_json::Value = serde_json::from_str(&minor_units()).unwrap();
        assert_eq!(m["JPY"], 0);
        assert_eq!(m["KRW"], 0);
        assert_eq!(m["KWD"], 3);
        assert!(m.get("USD").is_none() && m.get("HUF").is_none());
        // It sits in a single-quoted attribute.
        assert!(!minor_units().contains('\''));
    }
}
