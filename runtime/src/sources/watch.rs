//! New files in a folder: for sources without keywords (guider images, DRP
//! outputs). A file counts when it is closed after writing or moved in, and
//! its name matches the pattern.

use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Broadcast, now_secs};

/// Whether a file name matches a glob pattern (`*.fits`).
pub fn matches(pattern: &str, path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    glob::Pattern::new(pattern).map(|p| p.matches(&name)).unwrap_or(false)
}

/// Watch `dir` (recursively) and send matching complete files as broadcasts
/// of the keyword `FILE` for the service `unique`. Returns the watcher, which
/// must be kept alive.
pub fn start(dir: &Path, pattern: &str, unique: &str, tx: mpsc::Sender<Broadcast>) -> notify::Result<notify::RecommendedWatcher> {
    let (pattern, unique) = (pattern.to_string(), unique.to_string());
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        // a new sub-folder may have received files before its watch was added
        if matches!(ev.kind, EventKind::Create(CreateKind::Folder)) {
            for d in &ev.paths {
                for p in existing(d, &pattern) {
                    let b = Broadcast { service: unique.clone(), keyword: "FILE".into(), value: p.display().to_string(), time: now_secs() };
                    let _ = tx.blocking_send(b);
                }
            }
            return;
        }
        let complete = matches!(
            ev.kind,
            // a move within the watched tree is reported as To and again as
            // Both (inotify's paired cookie): To alone counts, once
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To))
                | EventKind::Create(CreateKind::File)
        );
        if !complete {
            return;
        }
        // a rename event carries (from, to): the last path is the new name
        let Some(p): Option<PathBuf> = ev.paths.last().cloned() else { return };
        // a created file is announced when it is closed, unless it was moved in complete
        if matches!(ev.kind, EventKind::Create(_)) {
            return;
        }
        if matches(&pattern, &p) && p.is_file() {
            let b = Broadcast { service: unique.clone(), keyword: "FILE".into(), value: p.display().to_string(), time: now_secs() };
            let _ = tx.blocking_send(b);
        }
    })?;
    w.watch(dir, RecursiveMode::Recursive)?;
    Ok(w)
}

/// Files already in a folder (recursive, following symbolic links but not a
/// link back into a folder being walked; unreadable folders and broken links
/// skipped) that match the pattern.
pub fn existing(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(true)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir() && matches(pattern, e.path()))
        .map(walkdir::DirEntry::into_path)
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_files_follow_links_once_and_match_the_pattern() {
        let d = tempfile::tempdir().unwrap();
        let night = d.path().join("2024mar15");
        std::fs::create_dir_all(night.join("sub")).unwrap();
        for f in ["a.fits", "b.txt", "sub/c.fits"] {
            std::fs::write(night.join(f), b"x").unwrap();
        }
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("linked.fits"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), night.join("link")).unwrap();
        // a cycle and a broken link: neither hangs nor counts
        std::os::unix::fs::symlink(&night, night.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(d.path().join("gone.fits"), night.join("broken.fits")).unwrap();
        let got: Vec<String> = existing(&night, "*.fits").iter().map(|p| p.strip_prefix(&night).unwrap().display().to_string()).collect();
        assert_eq!(got, ["a.fits", "link/linked.fits", "sub/c.fits"]);
    }
}
