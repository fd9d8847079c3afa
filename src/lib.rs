//! hookvault: a durable webhook intake daemon. A webhook is answered 2xx only after it is
//! committed to SQLite; a fixed pool of worker threads then turns it into an order, retrying
//! with backoff and parking what keeps failing in dead letters.
//!
//! `main.rs` only calls [`run`]. The public surface is that, the [`Settings`] and what a test
//! needs to build them, and [`testing`]: what the integration tests reach inside. Every other
//! module is private; `docs/architecture.md` maps them.
//!
//! The folders are the layers, bottom to top; each imports only from those below it: `base`
//! (the leaves), `settings`, `store`, `work` (queue, orders, relay, alerts, pipeline, stats,
//! events), `edge` (the HTTP transport), `api` (the HTTP API), `app` (service and commands).

mod api;
mod app;
mod base;
mod edge;
mod settings;
mod store;
mod work;

pub mod testing;

pub use settings::sources::SourceSettings;
pub use settings::{AlertEvent, AlertKind, AlertTarget, Settings, StorageSettings, ENV_PREFIX};

use app::cli::{self, Command};
use app::commands;

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
