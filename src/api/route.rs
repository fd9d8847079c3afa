//! What a route is: method, path pattern, who may call it, its handler; and how a method and
//! a path find one in a table ([`find`]). They sit below the handlers so the OpenAPI document
//! can describe routes without importing the table, and below the table (`routes.rs`) and
//! the dispatch (`router.rs`), which both match paths.

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::base::text::percent_decode;

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

pub enum Match<'r> {
    Found(&'r Route, Vec<String>),
    /// The path exists but not for this method; carries the allowed methods.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

pub fn find(routes: &'static [Route], method: &str, path: &str) -> Match<'static> {
    // A path a literal route names belongs to the literal routes alone: `{id}` beside
    // `retry-failed` must neither take its requests nor add its methods to `Allow`.
    let literal = |route: &&Route| !route.path.contains('{');
    let named = routes
        .iter()
        .any(|route| literal(&route) && match_path(route.path, path).is_some());
    let mut allowed = Vec::new();
    for route in routes.iter().filter(|route| !named || literal(route)) {
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
