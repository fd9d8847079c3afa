//! Order extraction from checkout-bot webhooks (Discord webhook JSON).
//!
//! The parser is pure code, no I/O: the worker hands a stored body to
//! [`OrderParser::parse`] and gets an [`Order`] or a permanent [`ParseError`] to
//! dead-letter. One concern per module:
//!
//! * [`parser`] — walks the JSON (embeds, fields, description, content) and
//!   assembles the order;
//! * [`lines`] — `Label: value` lines and alternating label/value lines;
//! * [`labels`] — label normalisation and the alias table;
//! * [`markdown`] — Discord markdown removal;
//! * [`limits`] — how much of each value an order keeps;
//! * [`price`] — price strings to minor units + ISO currency;
//! * the [`Order`] itself is the store's (`store/order.rs`), re-exported here;
//! * [`processor`] — the worker-side [`Processor`](crate::work::queue::Processor).
//!
//! What reads or writes the store around orders lives where its I/O is: the CSV export in
//! `api/csv.rs`, `hookvault reprocess` in `app/commands/reprocess.rs`.

pub mod labels;
pub mod limits;
pub mod lines;
pub mod markdown;
pub mod parser;
pub mod price;
pub mod processor;

/// The order's stored shape lives with the store, which keeps a column per field.
pub use crate::store::Order;
pub use parser::{OrderParser, ParseError};
pub use processor::{processor_for, OrderProcessor};
