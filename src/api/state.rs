//! What every handler may touch, built once by the service. Handlers never hold a write
//! connection: writes go to the writer thread.

use std::sync::Arc;

use crate::settings::sources::SourceList;
use crate::settings::Settings;
use crate::store::{ReadStore, WriterHandle};
use crate::work::events::EventSink;
use crate::work::queue::Dispatcher;
use crate::work::stats::{LiveStats, QueueView};

/// Everything a handler may touch.
pub struct AppState {
    pub settings: Settings,
    /// The ingest paths and how each one is checked, resolved once at start.
    pub sources: Arc<SourceList>,
    pub writer: WriterHandle,
    pub reader: Arc<dyn ReadStore>,
    pub live: Arc<LiveStats>,
    pub dispatcher: Dispatcher,
    pub events: EventSink,
    /// The WebSocket broadcaster's address (None when `websocket.listen = "off"`).
    pub ws_addr: Option<std::net::SocketAddr>,
    /// Deliveries: `?wait=true` answers, and the internal enqueue API.
    pub relay: crate::work::relay::Relay,
    /// The alerts, when `[[alerts]]` targets are configured.
    pub alerts: Option<Arc<crate::work::alerts::AlertService>>,
}

impl AppState {
    /// The worker channel as it is now, against the configured backlog limit.
    pub fn queue_view(&self) -> QueueView {
        QueueView::of(&self.dispatcher, self.settings.queue.max_backlog)
    }
}
