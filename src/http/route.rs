//! What a route is: method, path pattern, who may call it, its handler. The types sit below
//! the handlers so the OpenAPI document can describe routes without importing the table.

use super::call::Call;
use super::response::Reply;
use super::state::AppState;

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
