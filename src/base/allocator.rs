//! The one C allocator setting hookvault changes. glibc serves a block of `M_MMAP_THRESHOLD`
//! bytes or more (128 KiB at first) with a mapping of its own, which goes back to the system
//! when it is freed. But each time such a block is freed, glibc raises the threshold to that
//! block's size (up to 32 MiB), so after the first large body every later one, and the JSON
//! text parsed from it, came from the worker threads' arenas, which keep freed memory for
//! reuse: a drained backlog of large bodies left the process as large as the workers had been
//! at their busiest. Setting the threshold fixes it at its default and turns that adjustment
//! off (mallopt(3)), so large blocks keep their own mappings and memory goes back after each
//! message. Small blocks, the common case, are not affected.

/// glibc's own default threshold; setting it explicitly is what stops the adjustment.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Large allocations in their own mappings from now on (glibc only; a no-op elsewhere: musl
/// has no such adjustment). Call once at the start of a long-running command.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt changes an allocator parameter under the allocator's own lock; it
        // reads and writes no memory of ours and is safe to call at any time.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if set != 1 {
            log::warn!("could not set the allocator's mmap threshold; memory used for large bodies may not be given back");
        }
    }
}
