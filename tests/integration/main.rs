//! hookvault's integration tests: one test binary (it links once), every test starting the
//! server through [`harness`]. Run one area with `cargo test --test integration intake::`.

mod harness;

mod cli;
mod crash;
mod dashboard;
mod disk_full;
mod events_ws;
mod intake;
mod live_events;
mod operations;
mod orders;
mod orders_fixtures;
mod parser_props;
mod processing;
