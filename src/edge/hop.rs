//! The hop from the gate to tiny_http: a Unix socket in a directory of its own that only
//! hookvault's user can open (mode 0700), so nothing but the gate can hand tiny_http a
//! request, and the client's address the gate writes into each one can be believed.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory and the socket in it; both are removed when this is dropped.
#[derive(Debug)]
pub struct HopSocket {
    dir: PathBuf,
    socket: PathBuf,
}

impl HopSocket {
    /// A fresh directory under `$RUNTIME_DIRECTORY` (systemd's) or the temporary directory,
    /// and tiny_http's listening socket in it. The directory is created, never reused: one
    /// that exists already (another process's, or planted) is an error.
    pub fn create() -> std::io::Result<(HopSocket, UnixListener)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var_os("RUNTIME_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "hookvault-edge-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = dir.join("http.sock");
        let hop = HopSocket { dir, socket };
        let listener = UnixListener::bind(&hop.socket)?;
        std::fs::set_permissions(&hop.socket, std::fs::Permissions::from_mode(0o600))?;
        Ok((hop, listener))
    }

    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for HopSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_owner_can_enter_and_it_is_cleaned_up() {
        let (hop, _listener) = HopSocket::create().unwrap();
        let dir = hop.path().parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(hop);
        assert!(!dir.exists());
    }
}
