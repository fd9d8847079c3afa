//! The access rules of [`crate::base::access`] worded as HTTP answers: `401` with
//! `WWW-Authenticate` for a missing or wrong admin token, `403` naming the loopback-trust rule
//! a request broke while no token is set.

use super::call::Call;
use super::response::Reply;
use super::state::AppState;
use crate::base::access::{self, Denied, Door};

pub fn check_admin(state: &AppState, call: &Call) -> Result<(), Reply> {
    let server = &state.settings.server;
    let token = server.admin_token.as_deref();
    access::admin(token, &server.allowed_hosts, call, Door::Api).map_err(|denied| match denied {
        Denied::TokenWrong => Reply::error(401, "unauthorized", "the bearer token is wrong")
            .with_header("WWW-Authenticate", "Bearer"),
        Denied::TokenMissing => Reply::error(
            401,
            "unauthorized",
            "this endpoint needs `Authorization: Bearer <server.admin_token>`",
        )
        .with_header("WWW-Authenticate", "Bearer"),
        Denied::LocalOnly => Reply::error(
            403,
            "forbidden",
            "admin endpoints answer loopback clients only while server.admin_token is unset; set a token to use them remotely",
        ),
        Denied::Forwarded => Reply::error(
            403,
            denied.code(),
            "this request came through a proxy (it carries Forwarded, X-Forwarded-For or X-Real-IP), so it is not trusted as a loopback client; send Authorization: Bearer <server.admin_token>",
        ),
        Denied::ForeignHost => Reply::error(
            403,
            denied.code(),
            "without server.admin_token the Host header must be localhost, 127.0.0.1 or [::1] (any port) or listed in server.allowed_hosts",
        ),
        Denied::CrossOrigin => Reply::error(
            403,
            denied.code(),
            "a state-changing request from a page of another origin is refused while server.admin_token is unset (Origin names another host)",
        ),
    })
}

pub fn check_ingest(state: &AppState, call: &Call) -> Result<(), Reply> {
    let token = state.settings.ingest.token.as_deref();
    access::ingest(token, call).map_err(|denied| match denied {
        Denied::TokenWrong => Reply::error(401, "unauthorized", "the ingest token is wrong"),
        _ => Reply::error(
            401,
            "unauthorized",
            "an ingest token is required: add ?token=<ingest.token> to the URL or send it as X-Webhook-Token",
        ),
    })
}
