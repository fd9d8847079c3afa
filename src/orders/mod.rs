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
//! * [`price`] — price strings to minor units + ISO currency;
//! * [`processor`] — the worker-side [`Processor`](crate::queue::Processor);
//! * [`csv`] — the spreadsheet export;
//! * [`reprocess`] — `hookvault reprocess`, re-deriving orders from stored bodies.

pub mod csv;
pub mod labels;
pub mod lines;
pub mod markdown;
pub mod parser;
pub mod price;
pub mod processor;
pub mod reprocess;

/// The order's stored shape lives with the store, which keeps a column per field.
pub use crate::store::Order;
pub use parser::{OrderParser, ParseError};
pub use processor::{processor_for, OrderProcessor};
