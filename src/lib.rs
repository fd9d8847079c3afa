//! hookvault: durable webhook intake.
pub mod orders;
