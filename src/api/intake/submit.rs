//! The last step: the message as it is stored, handed to the writer, and the answer once its
//! commit is known (`queued` or `duplicate` with the id, or `503` when it could not be kept).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::failure::unexpected;
use crate::api::response::Reply;
use crate::api::state::AppState;
use crate::base::access;
use crate::base::cidr::Cidr;
use crate::base::time::now_ms;
use crate::settings::sources::Source;
use crate::store::{NewMessage, OpOutcome, WriteOp};

/// How long a handler waits for its commit before answering 503 (the message may still be
/// committed; the sender's retry is then answered `duplicate` if it carries a key).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_STORED_HEADERS: usize = 16 * 1024;
/// Headers never written to disk: secrets, and transport details that say nothing about the
/// webhook (every stored byte is written several times over, see docs/performance.md).
const SKIPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-webhook-token",
    "host",
    "content-length",
    "connection",
    "accept",
    "accept-encoding",
    "transfer-encoding",
    "expect",
    "x-hookvault-client",
];

/// The message to store: the body, where and when it came from, and the headers worth an
/// audit.
pub(super) fn message(
    state: &AppState,
    call: &Call,
    source: &Source,
    payload: Vec<u8>,
    idem_key: Option<String>,
) -> NewMessage {
    relayed_message(state, call, &source.name, payload, idem_key)
}

/// [`message`] for a source by name (the Discord relay path, which has no `[[sources]]` table).
pub(super) fn relayed_message(
    state: &AppState,
    call: &Call,
    source: &str,
    payload: Vec<u8>,
    idem_key: Option<String>,
) -> NewMessage {
    NewMessage {
        received_at_ms: now_ms(),
        source: source.to_string(),
        path: call
            .request
            .url()
            .split('?')
            .next()
            .unwrap_or("")
            .to_string(),
        remote_addr: client_address(state, call),
        headers_json: stored_headers(call.request),
        payload,
        idem_key,
        deliveries: Vec::new(),
    }
}

/// The sender's address: the peer's, or the one a trusted proxy names
/// (`server.trusted_proxies`, see [`access::client_address`]).
pub(super) fn client_address(state: &AppState, call: &Call) -> Option<String> {
    let proxies: Vec<Cidr> = (state.settings.server.trusted_proxies.iter())
        .filter_map(|p| p.parse().ok())
        .collect();
    access::client_address(call, &proxies)
}

/// Waits for the commit; `Ok` only once the message is on disk (or a duplicate of one that is).
pub(super) fn commit(state: &AppState, message: NewMessage) -> Step<Reply> {
    // Written out rather than built as a JSON value: this is every acknowledgement's body,
    // and neither part needs escaping. The same bytes `serde_json` writes for the object.
    let (id, duplicate) = commit_id(state, message)?;
    let status = if duplicate { "duplicate" } else { "queued" };
    Ok(Reply::text(
        200,
        "application/json",
        format!(r#"{{"id":{id},"status":"{status}"}}"#),
    ))
}

/// [`commit`]'s work: the stored message's id and whether it was a duplicate.
pub(super) fn commit_id(state: &AppState, message: NewMessage) -> Step<(i64, bool)> {
    match state
        .writer
        .submit(WriteOp::Append(message), COMMIT_TIMEOUT)
    {
        Ok(OpOutcome::Appended { id, duplicate }) => Ok((id, duplicate)),
        Ok(other) => Err((Refusal::Storage, unexpected(&other))),
        Err(e) => {
            log::error!("could not store a webhook: {e}");
            Err((
                Refusal::Storage,
                Reply::unavailable(
                    "storage_unavailable",
                    &format!(
                        "the webhook could not be stored ({e}); nothing was kept, retry later"
                    ),
                    2,
                ),
            ))
        }
    }
}

/// Headers worth keeping for an audit (content type, user agent, signatures, ids), as a
/// JSON object; secrets and transport headers are left out and the total is bounded. Names
/// are lower case, sorted, the last of a repeated header wins. The values are borrowed from
/// the request and serialised straight into the string (no JSON value per header: this runs
/// for every webhook).
fn stored_headers(request: &tiny_http::Request) -> String {
    let mut map: BTreeMap<String, &str> = BTreeMap::new();
    let mut total = 0;
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        if SKIPPED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = h.value.as_str();
        total += name.len() + value.len();
        if total > MAX_STORED_HEADERS {
            break;
        }
        map.insert(name, value);
    }
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}
