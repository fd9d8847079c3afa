//! hookvault: durable webhook intake.
