//! The request as a handler sees it: headers, decoded query, path parameters, the peer. It
//! sits below every handler and the route table, so handlers need nothing from each other.

use std::net::SocketAddr;
use std::time::Instant;

use super::response::Reply;
use crate::base::access;

/// A request on its way through a handler.
pub struct Call<'a> {
    pub request: &'a mut tiny_http::Request,
    /// Path segments matched by `{name}` in the route's path, decoded, in order.
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub remote: Option<SocketAddr>,
    /// When the request was taken from the listener, for the ack latency.
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

    /// A numeric query parameter; an unparsable one is the caller's mistake, so say so. An
    /// empty one (`?limit=`) too: it is not a number, and taking it for "absent" would hide a
    /// client's bug behind a default.
    pub fn query_num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Reply> {
        match self.query(name) {
            None => Ok(None),
            Some("") => Err(Reply::error(
                400,
                "bad_request",
                &format!("query parameter `{name}` is empty; give a number or leave it out"),
            )),
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

impl access::Caller for Call<'_> {
    fn peer(&self) -> Option<SocketAddr> {
        self.remote
    }

    fn header(&self, name: &str) -> Option<&str> {
        Call::header(self, name)
    }

    fn query(&self, name: &str) -> Option<&str> {
        Call::query(self, name)
    }

    fn method(&self) -> &str {
        self.request.method().as_str()
    }
}
