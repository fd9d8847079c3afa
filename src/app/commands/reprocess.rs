//! `hookvault reprocess`: re-derive orders from the stored raw webhooks after a parser or alias
//! change. Bodies are parsed in parallel with rayon (truly data-parallel work); every write
//! goes through the one write connection, a page per transaction. Running it twice changes
//! nothing the second time: an order that parses the same is left as it is.
//!
//! It writes to the database directly, so run it while `serve` is stopped (or restart `serve`
//! afterwards so its live counters re-read the dead-letter count). It is a command, not part
//! of `orders`, because it opens the database: the parser it drives stays pure.

use std::io::Write;
use std::time::Instant;

use rayon::prelude::*;

use super::load_settings;
use crate::base::error::{Error, Result, StoreError};
use crate::base::time::{now_ms, parse_rfc3339};
use crate::settings::Sources;
use crate::store::{
    self, MessageState, OpOutcome, OrderChange, PageAfter, RawFilter, RawMessage, ReadStore,
    WriteOp, WriteStore,
};
use crate::work::orders::{Order, OrderParser, OrderProcessor, ParseError};

const PAGE: u32 = 1000;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub examined: u64,
    pub parsed: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// The order number was already stored from another message (a re-sent order).
    pub duplicates: u64,
    /// Dead letters whose body now yields an order (they become processed).
    pub revived: u64,
    pub still_failing: u64,
    /// A few of the failure reasons, to show what to fix next.
    pub sample_errors: Vec<(i64, String)>,
}

pub fn run(sources: Sources, since: Option<String>, status: Option<String>) -> Result<()> {
    let settings = &load_settings(sources)?;
    let filter = filter(since, status)?;
    if settings.storage.backend == "sqlite" && !settings.storage.path.exists() {
        return Err(Error::Storage(StoreError::Io(format!(
            "no database at {}; pass --db or set storage.path",
            settings.storage.path.display()
        ))));
    }
    // The same parser, with the same aliases, as the workers of `serve`.
    let processor = OrderProcessor::new(settings)?;
    let (mut writer, reader) = store::open(&settings.storage)?;
    let summary = reprocess(
        processor.parser(),
        &reader,
        &mut writer,
        &filter,
        &mut std::io::stderr(),
    )?;
    print_summary(&summary);
    Ok(())
}

/// `--since` and `--status` as a filter on the stored messages.
fn filter(since: Option<String>, status: Option<String>) -> Result<RawFilter> {
    let since_ms = match since {
        Some(s) => Some(parse_rfc3339(&s).ok_or_else(|| {
            Error::Usage(format!(
                "--since {s:?} is not a date like 2026-11-28 or 2026-11-28T12:00:00Z"
            ))
        })?),
        None => None,
    };
    let status = match status.as_deref() {
        None => None,
        Some(s) => match MessageState::parse(s) {
            Some(st @ (MessageState::Processed | MessageState::Dead)) => Some(st),
            _ => {
                return Err(Error::Usage(format!(
                    "--status {s:?}: reprocess reads processed or dead messages"
                )))
            }
        },
    };
    Ok(RawFilter { since_ms, status })
}

/// The work itself, separate from argument handling so tests can drive it.
pub fn reprocess(
    parser: &OrderParser,
    reader: &dyn ReadStore,
    writer: &mut dyn WriteStore,
    filter: &RawFilter,
    progress: &mut dyn Write,
) -> Result<Summary> {
    let total = reader.raw_count(filter).map_err(Error::Storage)?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut summary = Summary::default();
    let mut cursor = 0;
    loop {
        let page = reader
            .raw_messages(
                filter,
                PageAfter {
                    after_id: cursor,
                    limit: PAGE,
                },
            )
            .map_err(Error::Storage)?;
        let Some(last) = page.last() else { break };
        cursor = last.id;
        let ops = parse_page(parser, &page, &mut summary);
        if !ops.is_empty() {
            let (outcomes, _) = writer
                .commit_batch(&ops, now_ms())
                .map_err(Error::Storage)?;
            count_changes(&outcomes, &mut summary);
        }
        if last_report.elapsed().as_secs_f64() >= 1.0 {
            last_report = Instant::now();
            let _ = writeln!(
                progress,
                "reprocess: {}/{total} messages ({:.0}%), {} parsed, {} new, {} changed, {} still failing, {:.0}/s",
                summary.examined,
                summary.examined as f64 * 100.0 / total.max(1) as f64,
                summary.parsed,
                summary.new,
                summary.changed,
                summary.still_failing,
                summary.examined as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    writer.close().map_err(Error::Storage)?;
    let _ = writeln!(
        progress,
        "reprocess: done, {} messages in {:.2}s",
        summary.examined,
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// Parses a page in parallel (rayon) and counts what parsed; the orders come back as the
/// writes that store them.
fn parse_page(parser: &OrderParser, page: &[RawMessage], summary: &mut Summary) -> Vec<WriteOp> {
    let parsed: Vec<(i64, MessageState, std::result::Result<Order, ParseError>)> = page
        .par_iter()
        .map(|m| (m.id, m.state, parser.parse(&m.payload)))
        .collect();
    let mut ops = Vec::with_capacity(parsed.len());
    for (id, state, result) in parsed {
        summary.examined += 1;
        match result {
            Ok(order) => {
                summary.parsed += 1;
                if state == MessageState::Dead {
                    summary.revived += 1;
                }
                ops.push(WriteOp::Rederive { id, order });
            }
            Err(e) => {
                summary.still_failing += 1;
                if summary.sample_errors.len() < 5 {
                    summary.sample_errors.push((id, e.to_string()));
                }
            }
        }
    }
    ops
}

/// Counts what each committed re-derivation did to the orders table.
fn count_changes(outcomes: &[OpOutcome], summary: &mut Summary) {
    for outcome in outcomes {
        match outcome {
            OpOutcome::Rederived(OrderChange::Created(_)) => summary.new += 1,
            OpOutcome::Rederived(OrderChange::Changed) => summary.changed += 1,
            OpOutcome::Rederived(OrderChange::Unchanged) => summary.unchanged += 1,
            OpOutcome::Rederived(OrderChange::Duplicate { .. }) => summary.duplicates += 1,
            _ => {}
        }
    }
}

fn print_summary(s: &Summary) {
    println!(
        "examined {}  parsed {}  new orders {}  changed {}  unchanged {}  duplicates {}  revived dead letters {}  still failing {}",
        s.examined, s.parsed, s.new, s.changed, s.unchanged, s.duplicates, s.revived, s.still_failing
    );
    for (id, e) in &s.sample_errors {
        println!("  message {id}: {e}");
    }
    if s.revived > 0 {
        println!("restart a running `hookvault serve` so its stats re-read the dead-letter count");
    }
}
