//! Retention: processed messages older than `storage.retention_days` are deleted (their body
//! and their deliveries too; their order, if any, stays). Dead and discarded messages are
//! kept, and so is a processed message while one of its deliveries is owed or dead.
//! Deliveries without a message (alerts) go once delivered or discarded for as long; dead
//! ones stay until an operator retries or discards them. The sweep goes through the writer in
//! small batches with a pause between them, so ingest never waits behind a long delete.

use std::time::Duration;

use crate::store::error::{StoreError, StoreResult};

use crate::store::model::{OpOutcome, WriteOp};

use crate::base::lifecycle::{Background, Stop};
use crate::base::time::now_ms;
use crate::store::writer::WriterHandle;

/// Messages (or deliveries of their own) deleted per transaction.
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
                    Ok(Swept {
                        messages: 0,
                        deliveries: 0,
                    }) => {}
                    Ok(Swept {
                        messages,
                        deliveries,
                    }) => log::info!(
                        "retention: removed {messages} processed messages and {deliveries} \
                         finished deliveries older than {retention_days} days"
                    ),
                    Err(e) => log::warn!("retention sweep failed: {e}; trying again later"),
                }
                wait = interval;
            }
        })?;
        Ok(sweeper)
    }

    /// One whole sweep as of `now_ms`: messages in batches of [`BATCH`] until one comes back
    /// short, then deliveries of their own the same way. `retention_days == 0` removes
    /// nothing.
    pub fn run_once(writer: &WriterHandle, retention_days: u32, now_ms: i64) -> StoreResult<Swept> {
        sweep(writer, retention_days, now_ms, None)
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub messages: u64,
    /// Deliveries, with their messages or of their own.
    pub deliveries: u64,
}

fn sweep(
    writer: &WriterHandle,
    retention_days: u32,
    now_ms: i64,
    stop: Option<&Stop>,
) -> StoreResult<Swept> {
    let mut swept = Swept::default();
    if retention_days == 0 {
        return Ok(swept);
    }
    let cutoff = now_ms.saturating_sub(i64::from(retention_days) * DAY_MS);
    // Messages first (their deliveries go with them), then deliveries of their own.
    let messages = |limit| WriteOp::PurgeProcessed {
        finished_before_ms: cutoff,
        limit,
    };
    let deliveries = |limit| WriteOp::PurgeDeliveries {
        finished_before_ms: cutoff,
        limit,
    };
    if batches(writer, &messages, |s| s.messages, stop, &mut swept)? {
        batches(writer, &deliveries, |s| s.deliveries, stop, &mut swept)?;
    }
    Ok(swept)
}

/// Batches of `op` until one removes fewer than [`BATCH`] of what `counted` reads, added to
/// `swept`; `false` when `stop` ended it first.
fn batches(
    writer: &WriterHandle,
    op: &dyn Fn(u32) -> WriteOp,
    counted: fn(&Swept) -> u64,
    stop: Option<&Stop>,
    swept: &mut Swept,
) -> StoreResult<bool> {
    loop {
        let batch = match writer.submit(op(BATCH), SUBMIT_TIMEOUT)? {
            OpOutcome::Purged {
                messages,
                deliveries,
            } => Swept {
                messages,
                deliveries,
            },
            other => {
                return Err(StoreError::Other(format!(
                    "unexpected answer to a purge: {other:?}"
                )))
            }
        };
        swept.messages += batch.messages;
        swept.deliveries += batch.deliveries;
        if counted(&batch) < u64::from(BATCH) {
            return Ok(true);
        }
        match stop {
            Some(stop) => {
                if stop.sleep(PAUSE) {
                    return Ok(false);
                }
            }
            None => std::thread::sleep(PAUSE),
        }
    }
}
