//! The sweeper: temporary files of jobs that died (kill -9, power loss)
//! are removed at start and periodically — files named as koa-dep names its
//! temporaries (`.<name>.<pid>.tmp`, `logtmp/repaired-<job>-<pid>.fits`)
//! under the archive root, last modified before `cutoff` (older than any
//! job alive now). Nothing else is ever touched.

use std::path::Path;
use std::time::SystemTime;

/// Whether a file name is one of koa-dep's temporaries.
pub fn is_temporary(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        return rest.rsplit_once('.').is_some_and(|(stem, pid)| !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
    }
    let in_logtmp = path.parent().and_then(|p| p.file_name()).is_some_and(|d| d == "logtmp");
    in_logtmp
        && name
            .strip_prefix("repaired-")
            .and_then(|n| n.strip_suffix(".fits"))
            .and_then(|n| n.split_once('-'))
            .is_some_and(|(job, pid)| job.bytes().all(|b| b.is_ascii_digit()) && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Remove the temporaries under `root` older than `cutoff`; returns
/// (files, bytes) removed. Symbolic links are not followed.
pub fn sweep(root: &Path, cutoff: SystemTime) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    for e in walkdir::WalkDir::new(root).follow_links(false).into_iter().flatten() {
        if !e.file_type().is_file() || !is_temporary(e.path()) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if meta.modified().is_ok_and(|m| m < cutoff) && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!("swept {} ({} bytes), left by a job that died", e.path().display(), meta.len());
            files += 1;
            bytes += meta.len();
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_old_temporaries_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let lev0 = d.path().join("NIRES/20240315/lev0");
        let logtmp = d.path().join("NIRES/logtmp");
        std::fs::create_dir_all(&lev0).unwrap();
        std::fs::create_dir_all(&logtmp).unwrap();
        let keep = [lev0.join("NR.20240315.30074.52.fits"), lev0.join(".hidden"), lev0.join(".x.tmp"), logtmp.join("job-3.log"), lev0.join("repaired-1-2.fits")];
        let swept = [lev0.join(".NR.20240315.30074.52.fits.4242.tmp"), lev0.join(".NR.20240315.30074.52.jpg.7.tmp"), logtmp.join("repaired-12-4242.fits")];
        for p in keep.iter().chain(&swept) {
            std::fs::write(p, b"0123456789").unwrap();
        }
        // a live job's temporary is newer than the cutoff
        let before = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(sweep(d.path(), before), (0, 0), "nothing older than an hour");
        let (files, bytes) = sweep(d.path(), SystemTime::now() + Duration::from_secs(1));
        assert_eq!((files, bytes), (3, 30));
        assert!(swept.iter().all(|p| !p.exists()));
        assert!(keep.iter().all(|p| p.exists()), "other files are never touched");
    }
}
