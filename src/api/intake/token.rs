//! The source's ingest token (its own `token`, else `ingest.token`), as `?token=` or
//! `X-Webhook-Token`; a source without one is open.

use super::{Refusal, Step};
use crate::api::call::Call;
use crate::api::response::Reply;
use crate::base::access::{self, Denied};
use crate::settings::sources::{Reason, Refused, Source};

pub(super) fn check(call: &Call, source: &Source) -> Step<()> {
    let message = match access::ingest(source.token.as_deref(), call) {
        Ok(()) => return Ok(()),
        Err(Denied::TokenWrong) => format!(
            "the ingest token for source {:?} is wrong: check ?token= or X-Webhook-Token against its token (or ingest.token)",
            source.name
        ),
        Err(_) => format!(
            "source {:?} needs its ingest token: add ?token=<token> to the URL or send it as X-Webhook-Token",
            source.name
        ),
    };
    Err(refuse(Refused::new(Reason::TokenInvalid, message)))
}

/// The `401` for a token or signature refusal: the reason's code and what to check.
pub(super) fn refuse(refused: Refused) -> (Refusal, Reply) {
    let reply = Reply::error(401, refused.reason.code(), &refused.message);
    (Refusal::Unverified(refused), reply)
}
