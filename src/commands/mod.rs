//! One file per command's body; `lib.rs::run` dispatches to them.

pub mod check;
