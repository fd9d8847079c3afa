//! hookvault's integration tests: one test binary (it links once), every test starting the
//! server through [`harness`]. Run one area with `cargo test --test integration intake::`.
//!
//! A new area is a file here plus a `mod` line below. Start servers with
//! `harness::Hookvault` (settings go through `.settings(..)`, not environment variables: all
//! tests share one process), read fixtures with `harness::webhook_fixtures`, and run the
//! command line with `harness::run_cli`. A test that needs a tool a machine may lack (sshd,
//! qemu, nginx, a browser) starts with `if !harness::require(&[..], why) { return; }`: it
//! skips with one line, or fails under `CI=true`. A helper only one area needs stays in that
//! area's file; the compiler reports harness items no test uses.

mod harness;

mod alerts;
#[cfg(feature = "postgres")]
mod alerts_cluster;
mod arm_builds;
mod backends;
mod backup;
mod browser;
mod check;
mod cli;
#[cfg(feature = "postgres")]
mod cluster;
#[cfg(feature = "postgres")]
mod cluster_nginx;
mod crash;
mod dashboard;
mod deploy_ssh;
mod disk_full;
mod edge;
mod edge_caddy;
mod edge_corpus;
mod edge_nginx;
mod events_ws;
mod faults;
mod instance_lock;
mod intake;
mod leases;
mod lifecycle;
mod listings;
mod live_events;
mod memory;
#[cfg(feature = "postgres")]
mod migrate;
mod operations;
mod orders;
mod orders_fixtures;
mod parser_props;
#[cfg(feature = "postgres")]
mod pg_store;
mod processing;
mod prometheus_rules;
mod promtool;
mod relay;
#[cfg(feature = "postgres")]
mod relay_cluster;
mod retention_scale;
mod schemathesis;
mod sources;
mod status;
mod store_faults;
mod systemd_units;
mod upgrade;
mod watchdog;
mod ws_slots;
