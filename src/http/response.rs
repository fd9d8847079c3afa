//! Responses. Every error is JSON `{"error": code, "message": text}` so a sender's logs say
//! what went wrong and what to do.

use serde::Serialize;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                content_type: "application/json",
                body,
                headers: Vec::new(),
            },
            Err(e) => Reply::error(500, "internal", &format!("cannot encode the response: {e}")),
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({ "error": code, "message": message });
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// `503` with `Retry-After`: the sender should come back, nothing was stored.
    pub fn unavailable(code: &str, message: &str, retry_after_s: u32) -> Reply {
        Reply::error(503, code, message).with_header("Retry-After", retry_after_s.to_string())
    }

    pub fn into_tiny(self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let mut resp = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        let mut add = |name: &str, value: &str| {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                resp.add_header(h);
            }
        };
        add("Content-Type", self.content_type);
        for (name, value) in &self.headers {
            add(name, value);
        }
        resp
    }
}
