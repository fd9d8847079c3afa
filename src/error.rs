//! The crate-level error type. Each variant maps to a process exit code so that systemd and
//! scripts can tell "fix your config" from "the disk is broken" without parsing text.

use std::io;

/// Exit code for a bad command line (same convention as BSD `sysexits.h`: EX_USAGE).
pub const EXIT_USAGE: i32 = 64;
/// Exit code for an invalid configuration (EX_CONFIG).
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for a storage failure at start-up (EX_IOERR).
pub const EXIT_STORAGE: i32 = 74;
/// Exit code when another process holds the database's instance lock (EX_TEMPFAIL: try again
/// once it has stopped).
pub const EXIT_IN_USE: i32 = 75;
/// Exit code when a listening socket cannot be bound (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: i32 = 69;
/// Exit code when the HTTP listener stopped answering while serving (EX_OSERR: typically a
/// thread or file-descriptor limit); systemd's `Restart=on-failure` starts a new process.
pub const EXIT_LISTENER_DEAD: i32 = 71;
/// Exit code for any other failure (EX_SOFTWARE).
pub const EXIT_SOFTWARE: i32 = 70;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}\nRun `hookvault --help` for usage.")]
    Usage(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("{0}")]
    InUse(String),
    #[error("cannot listen on {addr}: {source} (is another process using that port? set another address with --listen or server.listen)")]
    Bind { addr: String, source: io::Error },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Config(_) => EXIT_CONFIG,
            Error::Storage(_) => EXIT_STORAGE,
            Error::InUse(_) => EXIT_IN_USE,
            Error::Bind { .. } => EXIT_UNAVAILABLE,
            Error::Other(_) => EXIT_SOFTWARE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
