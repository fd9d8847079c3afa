//! A refused webhook (token or signature) leaves a trace: counted per reason, a row in the
//! rejections log with the source's `rejected` total (`WriteOp::Reject`), and a line in the
//! log: the source, the sender's address, the reason and the size — never the body or a
//! secret. The row is sent to the writer without waiting for its commit: a flood of forged
//! requests must not hold handler threads on fsyncs, and nothing a sender relies on is in it.

use std::sync::atomic::Ordering::Relaxed;

use super::submit::client_address;
use crate::api::call::Call;
use crate::api::state::AppState;
use crate::base::time::now_ms;
use crate::settings::sources::{Refused, Source};
use crate::store::{NewRejection, WriteOp};

pub(super) fn record(state: &AppState, call: &Call, source: &Source, refused: &Refused) {
    state.live.rejected_unverified[refused.reason as usize].fetch_add(1, Relaxed);
    let remote = client_address(state, call);
    let size = call.request.body_length().unwrap_or(0) as u64;
    log::info!(
        "refused a webhook for source {} from {}: {} ({size} bytes)",
        source.name,
        remote.as_deref().unwrap_or("-"),
        refused.reason.code(),
    );
    state.writer.send(WriteOp::Reject(NewRejection {
        at_ms: now_ms(),
        source: source.name.clone(),
        remote_addr: remote,
        reason: refused.reason.code(),
        size,
        keep: state.settings.ingest.rejections_kept,
    }));
}
