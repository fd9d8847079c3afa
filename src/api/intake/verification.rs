//! Whether a webhook really comes from its sender: the source's signature scheme
//! (`src/settings/sources/scheme.rs`) over the whole body, before anything is stored. A source
//! with `verify = "none"` accepts every body.

use super::token::refuse;
use super::Step;
use crate::api::call::Call;
use crate::base::time::now_ms;
use crate::settings::sources::{Headers, Source, Verified};

/// The request's headers as the schemes read them.
struct RequestHeaders<'c, 'r>(&'c Call<'r>);

impl Headers for RequestHeaders<'_, '_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.header(name)
    }
}

pub(super) fn check(call: &Call, source: &Source, payload: &[u8]) -> Step<Verified> {
    source
        .verifier
        .verify(&RequestHeaders(call), payload, now_ms().div_euclid(1000))
        .map_err(refuse)
}
