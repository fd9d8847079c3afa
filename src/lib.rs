//! hookvault: a durable webhook intake daemon. A webhook is answered 2xx only after it is
//! committed to SQLite; a fixed pool of worker threads then turns it into an order, retrying
//! with backoff and parking what keeps failing in dead letters.
//!
//! `main.rs` only calls [`run`]; tests use [`Service`] directly.

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod orders;
pub mod pipeline;
pub mod queue;
pub mod service;
pub mod shutdown;
pub mod signals;
pub mod stats;
pub mod store;
pub mod time;

pub use config::Settings;
pub use error::{Error, Result};
pub use service::Service;

use cli::Command;
use config::Sources;

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
        Command::CheckConfig(sources) => {
            // The contract: check-config exits 0 or 1.
            return match check_config(sources) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("hookvault: {e}");
                    1
                }
            };
        }
        Command::Serve(sources) => serve(sources),
        Command::Check { sources, repair } => {
            match load_settings(sources).and_then(|s| commands::check::run(&s, repair)) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
        Command::Reprocess {
            sources,
            since,
            status,
        } => load_settings(sources).and_then(|s| orders::reprocess::run(&s, since, status)),
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

fn load_settings(sources: Sources) -> Result<Settings> {
    Settings::load(&sources.with_process_env())
}

fn check_config(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    println!("# configuration is valid; effective settings:");
    print!("{}", settings.to_display_toml());
    Ok(())
}

/// Logs go to stderr (journald picks them up under systemd).
pub fn init_logging(level: &str) {
    let level = level.parse().unwrap_or(log::LevelFilter::Info);
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_thread_level(log::LevelFilter::Off)
        .set_target_level(log::LevelFilter::Off)
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}

fn serve(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    init_logging(&settings.log.level);
    let terminate = signals::termination()?;
    warn_about_exposure(&settings);
    let service = Service::start(settings.clone())?;
    let ws = service
        .ws_addr()
        .map(|a| format!("ws://{a}/ws"))
        .unwrap_or_else(|| "off".into());
    log::info!(
        "hookvault {} ready: http://{} events {} database {} workers {}",
        env!("CARGO_PKG_VERSION"),
        service.http_addr(),
        ws,
        settings.storage.path.display(),
        settings.queue.workers
    );
    // A stable line on stdout for scripts and tests that need the bound port.
    println!(
        "hookvault listening on http://{} events {ws}",
        service.http_addr()
    );
    let signal = terminate.recv().unwrap_or(0);
    log::info!(
        "signal {signal}: stopping (draining for up to {}s)",
        settings.queue.shutdown_timeout_s
    );
    let summary = service.stop();
    log::info!(
        "stopped in {:.2}s: {} messages left queued for the next start, {} processed and {} dead in total",
        summary.took.as_secs_f64(),
        summary.left_queued,
        summary.processed_total,
        summary.dead_total
    );
    Ok(())
}

fn warn_about_exposure(settings: &Settings) {
    let loopback = settings
        .server
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if !loopback && settings.server.admin_token.is_none() {
        log::warn!(
            "listening on {} without server.admin_token: admin endpoints answer loopback clients only; set a token to manage remotely",
            settings.server.listen
        );
    }
}
