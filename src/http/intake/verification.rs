//! Whether a webhook really comes from its sender. Signature checks (an HMAC of the body in a
//! header) belong here: they need the whole body, and they must run before anything is
//! stored. No sender signs its webhooks yet, so every body is accepted.

use super::Step;
use crate::http::call::Call;
use crate::http::state::AppState;

pub(super) fn check(_state: &AppState, _call: &Call, _payload: &[u8]) -> Step<()> {
    Ok(())
}
