//! Faults the process must survive, named: which I/O errors mean "the disk
//! is full" (a wait, not a fault of the file), and crash points for the
//! fault-injection suite.
//!
//! A crash point is a named place in a job (`before:<step>`, `after:<step>`,
//! `publish:renamed`, `transfer:shipped`, `transfer:ingested`). When the
//! environment variable `KOA_DEP_CRASH_AT` names it, the process kills
//! itself there with SIGKILL — what `kill -9` at that moment would do — so
//! the tests can stop a daemon at every point of the step list without
//! racing it. Unset (always, in production), a point costs one comparison.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_AT: &str = "KOA_DEP_CRASH_AT";

fn crash_at() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| std::env::var(CRASH_AT).ok().filter(|s| !s.is_empty())).as_deref()
}

/// Die here (SIGKILL, no clean-up) when `KOA_DEP_CRASH_AT` names `name`.
pub fn point(name: &str) {
    if crash_at() == Some(name) {
        tracing::error!("{CRASH_AT}={name}: killing this process");
        #[cfg(unix)]
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}

/// The crash points around a pipeline step.
pub fn step(name: &str, after: bool) {
    if let Some(at) = crash_at() {
        let (when, step) = at.split_once(':').unwrap_or(("", at));
        if step == name && when == if after { "after" } else { "before" } {
            point(at);
        }
    }
}

/// Whether an error's text is the operating system's "no space left on
/// device" or "disk quota exceeded" (errors reach jobs as text).
pub fn is_disk_full(message: &str) -> bool {
    let os = |n: i32| message.contains(&format!("(os error {n})"));
    os(libc::ENOSPC) || os(libc::EDQUOT) || message.contains("No space left on device")
}

/// Whether an I/O error is a full disk.
pub fn io_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) || e.kind() == std::io::ErrorKind::StorageFull
}

/// Bytes free for this user on the filesystem holding `path`.
pub fn free_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The filesystem id of `path` (whether two folders share a disk).
pub fn device(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_recognised_from_errors_and_their_text() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(io_disk_full(&e));
        assert!(is_disk_full(&format!("/a/lev0/.x.fits.1.tmp: {e}")));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(libc::EDQUOT).to_string()));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(libc::EACCES).to_string()));
        assert!(!io_disk_full(&std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(free_bytes(std::path::Path::new("/")).unwrap() > 0);
        assert!(device(std::path::Path::new("/")).is_some());
    }
}
