//! Why a storage operation failed, by kind: a full disk wants space freed, a damaged file wants
//! a backup, a stalled commit wants patience. Operators and callers tell them apart from the
//! variant; every message still says what to do next. Ops that find a message in the wrong
//! state are not errors: they answer `OpOutcome::NotApplicable`.
//!
//! The kinds themselves live with the crate error (`crate::base::error`, a leaf), which carries them
//! to the exit code; the store speaks them through this module.

pub use crate::base::error::StoreError;

pub type StoreResult<T> = Result<T, StoreError>;
