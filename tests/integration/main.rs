//! hookvault's integration tests: one test binary (it links once), every test starting the
//! server through [`harness`]. Run one area with `cargo test --test integration intake::`.
//!
//! A new area is a file here plus a `mod` line below. Start servers with
//! `harness::Hookvault` (settings go through `.settings(..)`, not environment variables: all
//! tests share one process), read fixtures with `harness::webhook_fixtures`, and run the
//! command line with `harness::run_cli`. A helper only one area needs stays in that area's
//! file; the compiler reports harness items no test uses.

mod harness;

mod backends;
mod cli;
#[cfg(feature = "postgres")]
mod cluster;
#[cfg(feature = "postgres")]
mod cluster_nginx;
mod crash;
mod dashboard;
mod disk_full;
mod events_ws;
mod faults;
mod intake;
mod live_events;
#[cfg(feature = "postgres")]
mod migrate;
mod operations;
mod orders;
mod orders_fixtures;
mod parser_props;
#[cfg(feature = "postgres")]
mod pg_store;
mod processing;
