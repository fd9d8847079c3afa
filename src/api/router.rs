//! Finding a request's route and running it: a source's ingest path first (they come from
//! the configuration), then the route table: match the path, check access, call the handler.
//! Unknown paths get `404`, known paths with another method `405` with `Allow`.

use std::time::Instant;

use super::auth;
use super::call::Call;
use super::intake;
use super::response::Reply;
use super::route::{find, Access, Match, Route};
use super::routes::ROUTES;
use super::state::AppState;
use crate::base::text::parse_query;
use crate::settings::sources::Source;

/// Runs a request through the table: route, access check, handler. `remote`: the client's
/// address (tiny_http's peer is the edge gate).
pub fn dispatch(
    state: &AppState,
    request: &mut tiny_http::Request,
    remote: Option<std::net::SocketAddr>,
    started: Instant,
) -> Reply {
    // The route is found on the borrowed URL; only what the handler needs is copied out.
    let (target, params, query) = {
        let url = request.url();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        // Methods are case-sensitive (RFC 9110): `post` is not POST. It is matched as sent, so
        // it finds no route, rather than reaching a handler that the access rules, which read
        // the method as sent too, might have judged as a read.
        let method = request.method().as_str();
        if let Some(source) = state.sources.by_path(path) {
            if method != "POST" {
                return Reply::error(
                    405,
                    "method_not_allowed",
                    &format!(
                        "{method} is not allowed on {path} (the ingest path of source {:?}); use POST{}",
                        source.name,
                        spelling(&["POST"], method)
                    ),
                )
                .with_header("Allow", "POST");
            }
            (Target::Source(source), Vec::new(), parse_query(query))
        } else {
            match find(ROUTES, method, path) {
                Match::NotFound => {
                    return Reply::error(
                        404,
                        "not_found",
                        &format!("no such endpoint: {path}; see /docs for the API"),
                    )
                }
                Match::WrongMethod(allowed) => {
                    return Reply::error(
                        405,
                        "method_not_allowed",
                        &format!(
                            "{method} is not allowed on {path}; use {}{}",
                            allowed.join(" or "),
                            spelling(&allowed, method)
                        ),
                    )
                    .with_header("Allow", allowed.join(", "));
                }
                Match::Found(route, params) => (Target::Route(route), params, parse_query(query)),
            }
        }
    };
    let mut call = Call {
        request,
        params,
        query,
        remote,
        started,
    };
    let route = match target {
        // A source checks its own token, so a refusal is counted and logged with the rest.
        Target::Source(source) => return intake::receive(state, &mut call, source),
        Target::Route(route) => route,
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

/// A hint when the method differs from an allowed one only in case.
fn spelling(allowed: &[&str], method: &str) -> &'static str {
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(method)) {
        " (methods are case-sensitive)"
    } else {
        ""
    }
}

/// What a request's path names: a source's ingest path, or a route of the table.
enum Target<'a> {
    Source(&'a Source),
    Route(&'static Route),
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
            matches!(find(ROUTES, "GET", "/api/v2/webhooks/queue/retry-failed"), Match::WrongMethod(m) if m == vec!["POST"])
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
        // Case-sensitive: a lowercase method is no route's.
        assert!(matches!(
            find(ROUTES, "post", "/api/v2/webhooks/queue/retry-failed"),
            Match::WrongMethod(m) if m == vec!["POST"]
        ));
        assert!(matches!(
            find(ROUTES, "get", "/healthz"),
            Match::WrongMethod(_)
        ));
    }

    #[test]
    fn a_literal_route_owns_its_path_beside_a_parameter() {
        assert!(matches!(
            find(ROUTES, "OPTIONS", "/api/v2/deliveries/retry-failed"),
            Match::WrongMethod(m) if m == vec!["POST"]
        ));
        assert!(matches!(
            find(ROUTES, "DELETE", "/api/v2/deliveries/retry-failed"),
            Match::WrongMethod(m) if m == vec!["POST"]
        ));
        assert!(matches!(
            find(ROUTES, "DELETE", "/api/v2/deliveries/7"),
            Match::Found(r, p) if r.path == "/api/v2/deliveries/{id}" && p == vec!["7".to_string()]
        ));
    }
}
