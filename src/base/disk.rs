//! Free space on a file system (statvfs(3)): what the `disk` alert and
//! `hookvault_disk_free_bytes` report for the database's directory.

use std::path::Path;

/// A file system's size and the space an unprivileged process may still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DiskSpace {
    pub free_bytes: u64,
    pub total_bytes: u64,
}

impl DiskSpace {
    /// Percent free, or `None` for a file system of size 0 (a pseudo file system).
    pub fn free_pct(self) -> Option<f64> {
        (self.total_bytes > 0).then(|| self.free_bytes as f64 * 100.0 / self.total_bytes as f64)
    }
}

/// The file system holding `path` (glibc targets; `None` elsewhere and on any error).
pub fn space_of(path: &Path) -> Option<DiskSpace> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: c_path is a NUL-terminated string that outlives the call, and st points to
        // writable memory of the struct's size; statvfs fills it whole when it returns 0.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it initialised the struct.
        let st = unsafe { st.assume_init() };
        let unit = wide(st.f_frsize);
        Some(DiskSpace {
            // f_bavail: what a process without root may use, which is what hookvault runs as.
            free_bytes: wide(st.f_bavail).saturating_mul(unit),
            total_bytes: wide(st.f_blocks).saturating_mul(unit),
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = path;
        None
    }
}

/// statvfs's fields are 64 bits wide here and 32 on 32-bit targets (armv7): widen either.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn wide(v: impl Into<u64>) -> u64 {
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temp_directory_has_a_size_and_some_room() {
        let dir = tempfile::tempdir().unwrap();
        let space = space_of(dir.path());
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let s = space.expect("statvfs on a temp dir");
            assert!(s.total_bytes > 0 && s.free_bytes <= s.total_bytes, "{s:?}");
            let pct = s.free_pct().unwrap();
            assert!((0.0..=100.0).contains(&pct), "{pct}");
        }
        assert_eq!(space_of(Path::new("/no/such/dir/anywhere")), None);
    }
}
