//! `hookvault serve`: run the daemon until SIGTERM or SIGINT, then stop gracefully (see
//! `docs/architecture.md`, "Shutdown").

use super::{load_settings, logging};
use crate::app::service::Service;
use crate::base::access::is_loopback;
use crate::base::error::Result;
use crate::base::notify::Notifier;
use crate::base::signals;
use crate::settings::{Settings, Sources};

pub fn run(sources: Sources) -> Result<()> {
    let settings = load_settings(sources)?;
    logging::init(&settings.log.level);
    crate::base::allocator::return_large_blocks_to_the_system();
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
    if let Some(n) = Notifier::from_env() {
        n.send(&format!(
            "STOPPING=1\nSTATUS=stopping on signal {signal}: draining for up to {}s",
            settings.queue.shutdown_timeout_s
        ));
    }
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

/// Without an admin token, remote admin calls are refused: say so at start rather than let
/// an operator find out from a 403.
fn warn_about_exposure(settings: &Settings) {
    let loopback = is_loopback(settings.server.listen.parse().ok());
    if !loopback && settings.server.admin_token.is_none() {
        log::warn!(
            "listening on {} without server.admin_token: admin endpoints answer loopback clients only; set a token to manage remotely",
            settings.server.listen
        );
    }
}
