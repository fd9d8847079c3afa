//! Why a storage operation failed, by kind: a full disk wants space freed, a damaged file wants
//! a backup, a stalled commit wants patience. Operators and callers tell them apart from the
//! variant; every message still says what to do next. Ops that find a message in the wrong
//! state are not errors: they answer `OpOutcome::NotApplicable`.

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
            StoreError::Busy(_) => "busy",
            StoreError::InUse { .. } => "in_use",
            StoreError::Stalled(_) => "stalled",
            StoreError::Stopped(_) => "stopped",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::NewerSchema { .. } => "newer_schema",
            StoreError::Other(_) => "other",
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Storage failures at the command level exit with the storage code (74) and the same message;
/// a database in use by another process has its own code (75), so a script can tell "wait" from
/// "repair".
impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InUse { .. } => crate::error::Error::InUse(e.to_string()),
            _ => crate::error::Error::Storage(e.to_string()),
        }
    }
}
