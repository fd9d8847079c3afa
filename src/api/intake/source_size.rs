//! A source's own `max_body_bytes` (at most `server.max_body_bytes`, which the edge and
//! `limits` enforce first): declared, before the body is read, and as read.

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::response::Reply;
use crate::settings::sources::Source;

pub(super) fn check_declared(call: &Call, source: &Source) -> Step<()> {
    match call.request.body_length() {
        Some(n) if n as u64 > source.max_body_bytes => Err(too_large(source)),
        _ => Ok(()),
    }
}

pub(super) fn check(payload: &[u8], source: &Source) -> Step<()> {
    if payload.len() as u64 > source.max_body_bytes {
        return Err(too_large(source));
    }
    Ok(())
}

fn too_large(source: &Source) -> (Refusal, Reply) {
    (
        Refusal::Client,
        Reply::error(
            413,
            "payload_too_large",
            &format!(
                "the body is larger than source {:?}'s max_body_bytes ({} bytes); nothing was stored",
                source.name, source.max_body_bytes
            ),
        ),
    )
}
