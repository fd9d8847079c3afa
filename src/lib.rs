//! hookvault: durable webhook intake.

pub mod events;
