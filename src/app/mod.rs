//! The top floor: what assembles the layers below into a running program. [`service`] starts
//! the components in the order the promise needs and stops them in reverse (through
//! `base::lifecycle`); [`cli`] reads the command line; [`commands`] holds one file per command
//! of the binary.

pub mod cli;
pub mod commands;
pub mod service;
