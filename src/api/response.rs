//! Responses. Every error is JSON `{"error": code, "message": text}` so a sender's logs say
//! what went wrong and what to do.

use serde::Serialize;

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// A body produced while it is sent (chunked), for exports too large to hold in memory.
    pub stream: Option<Box<dyn std::io::Read + Send>>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("streamed", &self.stream.is_some())
            .finish()
    }
}

impl Reply {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                content_type: "application/json",
                body,
                headers: Vec::new(),
                stream: None,
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
            stream: None,
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            stream: None,
        }
    }

    pub fn stream(
        status: u16,
        content_type: &'static str,
        body: Box<dyn std::io::Read + Send>,
    ) -> Reply {
        Reply {
            status,
            content_type,
            body: Vec::new(),
            headers: Vec::new(),
            stream: Some(body),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// `503` with `Retry-After`: the sender should come back, nothing was stored. The wait is
    /// drawn from `retry_after_s ..= 2 × retry_after_s` seconds: senders refused together (a
    /// failing disk refuses everyone at once) then come back spread over that window instead
    /// of all at the same second, which would meet the disk with the same burst again.
    pub fn unavailable(code: &str, message: &str, retry_after_s: u32) -> Reply {
        let base = u64::from(retry_after_s);
        let wait = crate::base::jitter::between(base, 2 * base);
        Reply::error(503, code, message).with_header("Retry-After", wait.to_string())
    }

    pub fn into_tiny(self) -> tiny_http::Response<Box<dyn std::io::Read + Send>> {
        let mut resp = match self.stream {
            Some(reader) => {
                tiny_http::Response::new(self.status.into(), Vec::new(), reader, None, None)
            }
            None => {
                let len = self.body.len();
                let reader: Box<dyn std::io::Read + Send> =
                    Box::new(std::io::Cursor::new(self.body));
                tiny_http::Response::new(self.status.into(), Vec::new(), reader, Some(len), None)
            }
        };
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

impl From<crate::edge::refusal::Refusal> for Reply {
    fn from(r: crate::edge::refusal::Refusal) -> Reply {
        match r.retry_after_s {
            Some(s) => Reply::unavailable(r.code, &r.message, s),
            None => Reply::error(r.status, r.code, &r.message),
        }
    }
}
