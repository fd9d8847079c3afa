//! The HTTP API on tiny_http: a handful of handler threads share one listener, so one slow
//! body or one request waiting for its commit never stalls the others.

pub mod auth;
pub mod dashboard;
pub mod intake;
pub mod openapi;
pub mod operations;
pub mod orders;
pub mod response;
pub mod router;
pub mod server;
pub mod stall_guard;

use std::sync::Arc;

use crate::config::Settings;
use crate::events::EventSink;
use crate::queue::Dispatcher;
use crate::stats::LiveStats;
use crate::store::{ReadStore, WriterHandle};

pub use response::Reply;
pub use router::{Access, Route, ROUTES};
pub use server::{BoundListener, HttpServer};

/// Everything a handler may touch. Handlers never hold a write connection: writes go to the
/// writer thread.
pub struct AppState {
    pub settings: Settings,
    pub writer: WriterHandle,
    pub reader: Arc<dyn ReadStore>,
    pub live: Arc<LiveStats>,
    pub dispatcher: Dispatcher,
    pub events: EventSink,
    /// The WebSocket broadcaster's address (None when `websocket.listen = "off"`).
    pub ws_addr: Option<std::net::SocketAddr>,
}
