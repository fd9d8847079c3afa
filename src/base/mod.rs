//! The ground floor: small pieces every layer above may use. They import nothing of
//! hookvault's but each other (`access` reads `cidr`, `signals` returns the crate `error`).
//!
//! The clock and RFC 3339 ([`time`]); percent-decoding and query strings ([`text`]); random
//! spread for waits ([`jitter`]); the one access policy of the HTTP API and the event stream
//! ([`access`]) and the address ranges it reads ([`cidr`]); reaching our own listeners
//! ([`net`]); free space on a file system ([`disk`]); a relay target's secret hidden
//! ([`mask`]); the systemd notification protocol ([`notify`]); SIGTERM and SIGINT
//! ([`signals`]); the C allocator setting `serve` makes ([`allocator`]); the crate error and
//! its exit codes ([`error`]).

pub mod access;
pub mod allocator;
pub mod cidr;
pub mod disk;
pub mod error;
pub mod jitter;
pub mod lifecycle;
pub mod mask;
pub mod net;
pub mod notify;
pub mod shutdown;
pub mod signals;
pub mod text;
pub mod time;
