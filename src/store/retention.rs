//! Retention: processed messages older than `storage.retention_days` are deleted (their body
//! too; their order, if any, stays). Dead and discarded messages are kept. The sweep goes
//! through the writer in small batches with a pause between them, so ingest never waits
//! behind a long delete.

use std::time::Duration;

use super::{OpOutcome, StoreError, StoreResult, WriteOp, WriterHandle};
use crate::base::lifecycle::{Background, Stop};
use crate::base::time::now_ms;

/// Messages deleted per transaction.
pub const BATCH: u32 = 500;
/// Pause between two batches of one sweep.
pub const PAUSE: Duration = Duration::from_millis(50);
/// First sweep after start, then one every `INTERVAL`.
pub const FIRST_RUN: Duration = Duration::from_secs(30);
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
const DAY_MS: i64 = 86_400_000;
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The retention thread.
pub struct RetentionSweeper;

impl RetentionSweeper {
    /// Starts the sweep thread; `retention_days == 0` keeps everything (no thread).
    pub fn start(writer: WriterHandle, retention_days: u32) -> std::io::Result<Background> {
        Self::start_with(writer, retention_days, FIRST_RUN, INTERVAL)
    }

    pub fn start_with(
        writer: WriterHandle,
        retention_days: u32,
        first_run: Duration,
        interval: Duration,
    ) -> std::io::Result<Background> {
        let mut sweeper = Background::new("retention");
        if retention_days == 0 {
            log::info!(
                "retention is off (storage.retention_days = 0): processed messages are kept"
            );
            return Ok(sweeper);
        }
        sweeper.spawn("retention", move |stop| {
            let mut wait = first_run;
            loop {
                if stop.sleep(wait) {
                    return;
                }
                match sweep(&writer, retention_days, now_ms(), Some(&stop)) {
                    Ok(0) => {}
                    Ok(n) => log::info!(
                        "retention: removed {n} processed messages older than {retention_days} days"
                    ),
                    Err(e) => log::warn!("retention sweep failed: {e}; trying again later"),
                }
                wait = interval;
            }
        })?;
        Ok(sweeper)
    }

    /// One whole sweep as of `now_ms`: batches of [`BATCH`] until one comes back short.
    /// Returns how many messages were removed. `retention_days == 0` removes nothing.
    pub fn run_once(writer: &WriterHandle, retention_days: u32, now_ms: i64) -> StoreResult<u64> {
        sweep(writer, retention_days, now_ms, None)
    }
}

fn sweep(
    writer: &WriterHandle,
    retention_days: u32,
    now_ms: i64,
    stop: Option<&Stop>,
) -> StoreResult<u64> {
    if retention_days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms.saturating_sub(i64::from(retention_days) * DAY_MS);
    let mut total = 0;
    loop {
        let op = WriteOp::PurgeProcessed {
            finished_before_ms: cutoff,
            limit: BATCH,
        };
        let n = match writer.submit(op, SUBMIT_TIMEOUT)? {
            OpOutcome::Changed(n) => n,
            other => {
                return Err(StoreError::Other(format!(
                    "unexpected answer to a purge: {other:?}"
                )))
            }
        };
        total += n;
        if n < u64::from(BATCH) {
            return Ok(total);
        }
        match stop {
            Some(stop) => {
                if stop.sleep(PAUSE) {
                    return Ok(total);
                }
            }
            None => std::thread::sleep(PAUSE),
        }
    }
}
