//! The route table. It is data, not a `match`, so the OpenAPI document and its test can be
//! checked against exactly the routes the server answers.

use std::net::SocketAddr;
use std::time::Instant;

use super::{auth, dashboard, intake, openapi, operations, orders, AppState, Reply};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Ingest,
    Admin,
}

pub type Handler = fn(&AppState, &mut Call) -> Reply;

pub struct Route {
    pub method: &'static str,
    /// Segments in braces (`{id}`) match any one segment and are passed in `Call::params`.
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
    pub summary: &'static str,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v2/webhooks/orders",
        access: Access::Ingest,
        handler: intake::receive,
        summary: "Receive a webhook; 200 only once it is committed to disk",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/queue/stats",
        access: Access::Admin,
        handler: operations::stats,
        summary: "Queue statistics from durable counters",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/queue/dead-letters",
        access: Access::Admin,
        handler: operations::dead_letters,
        summary: "Dead letters, oldest first, paged by after_id",
    },
    Route {
        method: "POST",
        path: "/api/v2/webhooks/queue/retry-failed",
        access: Access::Admin,
        handler: operations::retry_failed,
        summary: "Requeue every dead letter",
    },
    Route {
        method: "POST",
        path: "/api/v2/webhooks/queue/dead-letters/{id}/retry",
        access: Access::Admin,
        handler: operations::retry_one,
        summary: "Requeue one dead letter",
    },
    Route {
        method: "DELETE",
        path: "/api/v2/webhooks/queue/dead-letters/{id}",
        access: Access::Admin,
        handler: operations::discard,
        summary: "Discard one dead letter (it stays in the audit log)",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/logs",
        access: Access::Admin,
        handler: operations::logs,
        summary: "The audit log, newest first, paged by before_id, filtered by status",
    },
    Route {
        method: "GET",
        path: "/api/v2/webhooks/logs/{id}",
        access: Access::Admin,
        handler: operations::log_entry,
        summary: "One message whole: state, attempts, headers and payload",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders",
        access: Access::Admin,
        handler: orders::list,
        summary: "Orders, newest first; ?limit=, ?before_id=, ?q= (order number, email or product)",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders.csv",
        access: Access::Admin,
        handler: orders::csv,
        summary: "Every order as CSV for spreadsheets; ?q= filters",
    },
    Route {
        method: "GET",
        path: "/api/v2/orders/{order_number}",
        access: Access::Admin,
        handler: orders::one,
        summary: "One order by its order number",
    },
    Route {
        method: "GET",
        path: "/healthz",
        access: Access::Open,
        handler: operations::healthz,
        summary: "Liveness: 200 while the process is up",
    },
    Route {
        method: "GET",
        path: "/readyz",
        access: Access::Open,
        handler: operations::readyz,
        summary: "Readiness: 200 when the database is writable and every worker runs, else 503",
    },
    Route {
        method: "GET",
        path: "/metrics",
        access: Access::Admin,
        handler: operations::metrics,
        summary: "Prometheus metrics: counters, gauges, latency histograms",
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        access: Access::Admin,
        handler: openapi::openapi_json,
        summary: "This API as an OpenAPI 3.1 document",
    },
    Route {
        method: "GET",
        path: "/docs",
        access: Access::Admin,
        handler: openapi::docs,
        summary: "The API documentation as a self-contained HTML page",
    },
    Route {
        method: "GET",
        path: "/dashboard",
        access: Access::Open,
        handler: dashboard::page,
        summary: "A small self-contained operator dashboard (it reads the admin API)",
    },
];

/// A request on its way through a handler.
pub struct Call<'a> {
    pub request: &'a mut tiny_http::Request,
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub remote: Option<SocketAddr>,
    pub started: Instant,
}

impl Call<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric query parameter; an unparsable one is the caller's mistake, so say so.
    pub fn query_num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Reply> {
        match self.query(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Reply::error(
                    400,
                    "bad_request",
                    &format!("query parameter `{name}` must be a number, got {v:?}"),
                )
            }),
        }
    }

    pub fn param_id(&self, index: usize) -> Result<i64, Reply> {
        let raw = self.params.get(index).map(String::as_str).unwrap_or("");
        raw.parse()
            .map_err(|_| Reply::error(400, "bad_request", &format!("{raw:?} is not a message id")))
    }
}

pub enum Match<'r> {
    Found(&'r Route, Vec<String>),
    /// The path exists but not for this method; carries the allowed methods.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

pub fn find(routes: &'static [Route], method: &str, path: &str) -> Match<'static> {
    let mut allowed = Vec::new();
    for route in routes {
        if let Some(params) = match_path(route.path, path) {
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return Match::Found(route, params);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::WrongMethod(allowed)
    }
}

fn match_path(pattern: &str, path: &str) -> Option<Vec<String>> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => {
                params.push(percent_decode(g))
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Splits `?a=1&b=2` into decoded pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a request through the table: route, access check, handler.
pub fn dispatch(state: &AppState, request: &mut tiny_http::Request, started: Instant) -> Reply {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().as_str().to_ascii_uppercase();
    match find(ROUTES, &method, path) {
        Match::NotFound => Reply::error(
            404,
            "not_found",
            &format!("no such endpoint: {path}; see /docs for the API"),
        ),
        Match::WrongMethod(allowed) => Reply::error(
            405,
            "method_not_allowed",
            &format!(
                "{method} is not allowed on {path}; use {}",
                allowed.join(" or ")
            ),
        )
        .with_header("Allow", allowed.join(", ")),
        Match::Found(route, params) => {
            let remote = request.remote_addr().copied();
            let mut call = Call {
                request,
                params,
                query: parse_query(query),
                remote,
                started,
            };
            let allowed = match route.access {
                Access::Open => Ok(()),
                Access::Ingest => auth::check_ingest(state, &call),
                Access::Admin => auth::check_admin(state, &call),
            };
            match allowed {
                Ok(()) => (route.handler)(state, &mut call),
                Err(reply) => reply,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_params_and_methods() {
        match find(ROUTES, "GET", "/api/v2/webhooks/logs/42") {
            Match::Found(r, p) => {
                assert_eq!(r.path, "/api/v2/webhooks/logs/{id}");
                assert_eq!(p, vec!["42".to_string()]);
            }
            _ => panic!("no match"),
        }
        assert!(
            matches!(find(ROUTES, "GET", "/api/v2/webhooks/orders"), Match::WrongMethod(m) if m == vec!["POST"])
        );
        assert!(matches!(find(ROUTES, "GET", "/nope"), Match::NotFound));
        assert!(matches!(
            find(ROUTES, "POST", "/api/v2/webhooks/queue/dead-letters//retry"),
            Match::NotFound
        ));
        assert!(matches!(
            find(ROUTES, "GET", "/api/v2/webhooks/logs/"),
            Match::Found(r, _) if r.path == "/api/v2/webhooks/logs"
        ));
        assert!(matches!(find(ROUTES, "GET", "/healthz/"), Match::Found(..)));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("a=1&b=x%20y&c=%zz&d"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "%zz".into()),
                ("d".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
    }
}
