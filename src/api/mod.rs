//! The HTTP API on tiny_http: a handful of handler threads share one listener, so one slow
//! body or one request waiting for its commit never stalls the others.
//!
//! Layers, bottom to top (each imports only the ones below it):
//! - [`state`], [`response`], [`call`], [`paging`], [`failure`], [`message_json`],
//!   [`route`]: what handlers may touch, the reply, the request context and the small
//!   helpers handlers share;
//! - [`auth`]: the rules of [`crate::base::access`] as HTTP answers;
//! - handlers, one area each: [`intake`], [`operator`] (what operator actions share),
//!   [`health`], [`dead_letters`], [`logs`], [`orders`] (with [`csv`]), [`dashboard`], and
//!   [`openapi`] for the API document;
//! - [`routes`]: the table naming every handler; [`router`]: the dispatch (the matching is
//!   [`route::find`]);
//! - [`server`]: the listener and its handler threads, serving the router over the transport
//!   below the API, [`crate::edge`] (gate or direct, framing rules and refusals, the stall
//!   guard, the listener watchdog).
//!
//! A new endpoint is a handler in the module of its area plus a line in [`routes`] (and its
//! description in [`openapi`]).

pub mod alerts;
pub mod auth;
pub mod call;
pub mod csv;
pub mod dashboard;
pub mod dead_letters;
pub mod deliveries;
pub mod discord_relay;
pub mod failure;
pub mod favicon;
pub mod health;
pub mod intake;
pub mod logs;
pub mod message_json;
pub mod openapi;
pub mod operator;
pub mod orders;
pub mod paging;
pub mod rejections;
pub mod response;
pub mod route;
pub mod router;
pub mod routes;
pub mod server;
pub mod source_filter;
pub mod state;

pub use routes::ROUTES;
pub use server::{BoundListener, HttpServer};
pub use state::AppState;
