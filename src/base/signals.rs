//! OS signals. SIGTERM (systemd's stop) and SIGINT (Ctrl-C) start a graceful shutdown; a
//! second one while shutting down exits at once. Nothing acknowledged is lost either way: it
//! is on disk.

use crossbeam_channel::{bounded, Receiver};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::base::error::{Error, Result};
use crate::base::lifecycle::Thread;

/// Returns a channel that receives once for the first SIGTERM/SIGINT.
pub fn termination() -> Result<Receiver<i32>> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::Other(format!("cannot install signal handlers: {e}")))?;
    let (tx, rx) = bounded(1);
    // Not a component: it lives as long as the process (a second signal exits at once), so
    // the handle is dropped and the thread detached.
    Thread::spawn("signals", move || {
        let mut seen = 0;
        for sig in signals.forever() {
            seen += 1;
            if seen == 1 {
                let _ = tx.send(sig);
            } else {
                log::warn!("second signal {sig}: exiting now; acknowledged webhooks are on disk and resume at the next start");
                std::process::exit(130);
            }
        }
    })
    .map_err(|e| Error::Other(e.to_string()))?;
    Ok(rx)
}
