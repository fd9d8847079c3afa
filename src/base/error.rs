//! The crate-level error type. Each variant maps to a process exit code so that systemd and
//! scripts can tell "fix your config" from "the disk is broken" without parsing text.

use std::io;

/// Exit code for a bad command line (same convention as BSD `sysexits.h`: EX_USAGE).
pub const EXIT_USAGE: i32 = 64;
/// Exit code for an invalid configuration (EX_CONFIG).
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for a storage failure: the disk is full or failing, or anything else the storage
/// reported (EX_IOERR).
pub const EXIT_STORAGE: i32 = 74;
/// Exit code when the database is damaged or was written by a newer hookvault (EX_DATAERR):
/// starting again will not help; restore a backup or run the newer binary.
pub const EXIT_DATA: i32 = 65;
/// Exit code when the database is busy, in use by another hookvault (its instance lock) or
/// out of reach (EX_TEMPFAIL): try again once that has passed.
pub const EXIT_TRY_AGAIN: i32 = 75;
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
    /// A storage failure, by kind (see [`StoreError::exit_code`]).
    #[error("{}", storage_message(.0))]
    Storage(StoreError),
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
            Error::Storage(e) => e.exit_code(),
            Error::Bind { .. } => EXIT_UNAVAILABLE,
            Error::Other(_) => EXIT_SOFTWARE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "storage: " and the reason; a database in use says only who holds it and what to do.
fn storage_message(e: &StoreError) -> String {
    match e {
        StoreError::InUse { .. } => e.to_string(),
        _ => format!("storage: {e}"),
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Storage(e)
    }
}

/// A storage failure. Every kind means "nothing of that write was kept".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the file system's quota) has no room for the write.
    #[error("the disk is full ({0}); free some space, nothing is lost meanwhile")]
    DiskFull(String),
    /// The operating system could not read or write the file (missing directory, permissions,
    /// a failing device).
    #[error("I/O error: {0}")]
    Io(String),
    /// The database server cannot be reached, or the connection to it broke.
    #[error("the database is unavailable ({0}); it is tried again")]
    Unavailable(String),
    /// Another process holds the database locked (a second hookvault, a `sqlite3` shell).
    #[error("the database is locked by another process ({0})")]
    Busy(String),
    /// Another process (a running `serve`, a `reprocess`) holds the database's instance lock.
    #[error(
        "the database is in use: {lock_file} is held by {holder}; stop that process first \
         (only one hookvault may use a database at a time)"
    )]
    InUse { lock_file: String, holder: String },
    /// No commit came back in time, or the writer's inbox stayed full: the disk is not keeping
    /// up.
    #[error("{0}")]
    Stalled(String),
    /// The writer thread is gone (the service is stopping).
    #[error("{0}")]
    Stopped(String),
    /// The file is damaged or is not a hookvault database.
    #[error("the database file is damaged or not a database ({0}); restore a backup")]
    Corrupt(String),
    /// The database was written by a newer hookvault.
    #[error(
        "the database has schema version {found}, but this hookvault knows only up to \
         {supported}; run the newer hookvault that wrote it, or restore a backup"
    )]
    NewerSchema { found: i64, supported: i64 },
    /// Anything else the backend reported (a constraint, a misuse): more likely a bug than an
    /// operator's problem.
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// A short stable name for the kind, for logs and error answers.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::DiskFull(_) => "disk_full",
            StoreError::Io(_) => "io",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Busy(_) => "busy",
            StoreError::InUse { .. } => "in_use",
            StoreError::Stalled(_) => "stalled",
            StoreError::Stopped(_) => "stopped",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::NewerSchema { .. } => "newer_schema",
            StoreError::Other(_) => "other",
        }
    }

    /// The exit code a command ends with when this stops it, by what the operator does next.
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::DiskFull(_) | StoreError::Io(_) | StoreError::Other(_) => EXIT_STORAGE,
            StoreError::Corrupt(_) | StoreError::NewerSchema { .. } => EXIT_DATA,
            StoreError::InUse { .. }
            | StoreError::Busy(_)
            | StoreError::Stalled(_)
            | StoreError::Stopped(_)
            | StoreError::Unavailable(_) => EXIT_TRY_AGAIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One mapping from a storage failure's kind to the exit code.
    #[test]
    fn a_storage_failure_exits_by_its_kind() {
        let t = || "x".to_string();
        let cases = [
            (StoreError::DiskFull(t()), EXIT_STORAGE),
            (StoreError::Io(t()), EXIT_STORAGE),
            (StoreError::Other(t()), EXIT_STORAGE),
            (StoreError::Corrupt(t()), EXIT_DATA),
            (
                StoreError::NewerSchema {
                    found: 9,
                    supported: 1,
                },
                EXIT_DATA,
            ),
            (StoreError::Busy(t()), EXIT_TRY_AGAIN),
            (StoreError::Stalled(t()), EXIT_TRY_AGAIN),
            (StoreError::Stopped(t()), EXIT_TRY_AGAIN),
            (StoreError::Unavailable(t()), EXIT_TRY_AGAIN),
            (
                StoreError::InUse {
                    lock_file: t(),
                    holder: t(),
                },
                EXIT_TRY_AGAIN,
            ),
        ];
        for (e, code) in cases {
            let kind = e.kind();
            let error = Error::from(e);
            assert_eq!(error.exit_code(), code, "{kind}");
            assert!(matches!(error, Error::Storage(_)));
        }
    }
}
