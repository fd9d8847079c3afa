//! A refused webhook (token or signature) leaves a trace: counted per reason, and a line in
//! the log naming the source, the sender's address, the reason and the size — never the body
//! or a secret.

use std::sync::atomic::Ordering::Relaxed;

use super::submit::client_address;
use crate::http::call::Call;
use crate::http::state::AppState;
use crate::sources::{Refused, Source};

pub(super) fn record(state: &AppState, call: &Call, source: &Source, refused: &Refused) {
    state.live.rejected_unverified[refused.reason as usize].fetch_add(1, Relaxed);
    let remote = client_address(state, call).unwrap_or_else(|| "-".into());
    log::info!(
        "refused a webhook for source {} from {remote}: {} ({} bytes)",
        source.name,
        refused.reason.code(),
        call.request.body_length().unwrap_or(0)
    );
}
