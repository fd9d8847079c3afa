//! The library's server running inside the test process.

use std::path::{Path, PathBuf};

use hookvault::testing::{Service, StopSummary};

use super::http::Http;

/// A running [`Service`]; stopped when dropped. Keeps its temp directory alive.
pub struct InProcess {
    pub http: Http,
    service: Option<Service>,
    database: PathBuf,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub(super) fn new(service: Service, database: PathBuf, dir: tempfile::TempDir) -> InProcess {
        InProcess {
            http: Http::new(service.http_addr()),
            service: Some(service),
            database,
            _dir: dir,
        }
    }

    /// The running service (its addresses, its writer).
    pub fn service(&self) -> &Service {
        self.service.as_ref().expect("running")
    }

    /// The database file, to start again on it after [`InProcess::stop`].
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// Stops the service now (the directory and database stay until drop).
    pub fn stop(&mut self) -> StopSummary {
        self.service.take().expect("running").stop()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.service.take() {
            s.stop();
        }
    }
}
