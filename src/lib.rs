//! hookvault: a durable webhook intake daemon. A webhook is answered 2xx only after it is
//! committed to SQLite; a fixed pool of worker threads then turns it into an order, retrying
//! with backoff and parking what keeps failing in dead letters.
//!
//! `main.rs` only calls [`run`]; tests use [`Service`] directly. `docs/architecture.md` maps
//! the modules.

pub mod access;
pub mod alerts;
pub mod allocator;
pub mod cidr;
pub mod cli;
pub mod commands;
pub mod config;
pub mod disk;
pub mod error;
pub mod events;
pub mod http;
pub mod jitter;
pub mod lifecycle;
pub mod net;
pub mod notify;
pub mod orders;
pub mod pipeline;
pub mod queue;
pub mod relay;
pub mod service;
pub mod shutdown;
pub mod signals;
pub mod sources;
pub mod stats;
pub mod store;
pub mod text;
pub mod time;

pub use commands::logging::init as init_logging;
pub use config::Settings;
pub use error::{Error, Result};
pub use service::Service;

use cli::Command;

/// Runs a command line and returns the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hookvault: {e}");
            return e.exit_code();
        }
    };
    let result = match command {
        Command::Help => {
            print!("{}", cli::HELP);
            Ok(())
        }
        Command::Version => {
            println!("hookvault {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        // check-config exits 0 or 1, whatever went wrong (see `hookvault --help`).
        Command::CheckConfig(sources) => {
            return match commands::check_config::run(sources) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("hookvault: {e}");
                    1
                }
            };
        }
        Command::Serve(sources) => commands::serve::run(sources),
        Command::Check { sources, repair } => {
            match commands::load_settings(sources).and_then(|s| commands::check::run(&s, repair)) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
        Command::Reprocess {
            sources,
            since,
            status,
        } => commands::reprocess::run(sources, since, status),
        Command::Backup {
            sources,
            target,
            force,
        } => commands::backup::run(sources, target, force),
        Command::Restore {
            sources,
            backup,
            force,
        } => commands::restore::run(sources, backup, force),
        Command::Schema(sources) => commands::schema::run(sources),
        Command::Migrate { from, to } => commands::migrate::run(&from, &to),
        Command::Sign {
            sources,
            source,
            id,
            timestamp,
            body,
        } => commands::sign::run(
            sources,
            commands::sign::SignRequest {
                source,
                id,
                timestamp,
                body,
            },
        ),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            eprintln!("hookvault: {e}");
            e.exit_code()
        }
    }
}
